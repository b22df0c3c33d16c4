# bash completion for slipway. The commands and flags are read from slipway's own --help, so
# they are always those of the installed binary.

_slipway_commands() {
	"${1:-slipway}" --help 2>/dev/null | awk '/^Commands:/ { f = 1; next } f && /^  [a-z]/ { print $1 }'
}

_slipway_flags() {
	"$1" "$2" --help 2>/dev/null | grep -oE '(^|[ ,])--?[A-Za-z][A-Za-z0-9-]*' | tr -d ' ,' | sort -u
}

_slipway_images() {
	"$1" images 2>/dev/null | awk 'NR > 1 && $1 != "<none>" { print $1 ":" $2 }'
}

_slipway() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	local bin=${COMP_WORDS[0]} cmd= i
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		--root) ((i++)) ;;
		-*) ;;
		*)
			cmd=${COMP_WORDS[i]}
			break
			;;
		esac
	done
	if [[ -z $cmd ]]; then
		if [[ $prev == --root ]]; then
			COMPREPLY=($(compgen -d -- "$cur"))
		elif [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "--root --debug --help --version" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$(_slipway_commands "$bin")" -- "$cur"))
		fi
		return
	fi
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$(_slipway_flags "$bin" "$cmd")" -- "$cur"))
		return
	fi
	case $prev in
	-f | --file | --iidfile | --env-file | --secret | -o | --output | --metadata-file)
		COMPREPLY=($(compgen -f -- "$cur"))
		return
		;;
	esac
	case $cmd in
	run | inspect | history | tag | rmi | save | push)
		COMPREPLY=($(compgen -W "$(_slipway_images "$bin")" -- "$cur"))
		;;
	logs | stop | kill | rm | exec)
		COMPREPLY=($(compgen -W "$("$bin" ps -a 2>/dev/null | awk 'NR > 1 { print $NF }')" -- "$cur"))
		;;
	*)
		COMPREPLY=($(compgen -f -- "$cur"))
		;;
	esac
}

complete -o filenames -o bashdefault -F _slipway slipway
