# fish completion for slipway: commands and flags read from slipway's own --help.

function __slipway_commands
    slipway --help 2>/dev/null | awk '/^Commands:/ { f = 1; next } f && /^  [a-z]/ { n = $1; $1 = ""; sub(/^ +/, ""); print n "\t" $0 }'
end

function __slipway_command
    set -l words (commandline -opc)
    set -e words[1]
    while set -q words[1]
        switch $words[1]
            case --root
                set -e words[1]
            case '-*'
            case '*'
                echo $words[1]
                return 0
        end
        set -e words[1]
    end
    return 1
end

function __slipway_flags
    set -l cmd (__slipway_command)
    slipway $cmd --help 2>/dev/null | string match -rag -- '(?:^|[ ,])(--?[A-Za-z][A-Za-z0-9-]*)' | sort -u
end

function __slipway_images
    slipway images 2>/dev/null | awk 'NR > 1 && $1 != "<none>" { print $1 ":" $2 }'
end

function __slipway_containers
    slipway ps -a 2>/dev/null | awk 'NR > 1 { print $NF }'
end

complete -c slipway -f
complete -c slipway -n 'not __slipway_command' -a '(__slipway_commands)'
complete -c slipway -n 'not __slipway_command' -l root -r -F -d 'store directory'
complete -c slipway -n 'not __slipway_command' -s D -l debug -d 'print debug output'
complete -c slipway -n 'not __slipway_command' -s v -l version -d 'print the version'
complete -c slipway -n '__slipway_command; and string match -q -- "-*" (commandline -ct)' -a '(__slipway_flags)'
complete -c slipway -n '__slipway_command | string match -qr "^(run|inspect|history|tag|rmi|save|push)\$"' -a '(__slipway_images)'
complete -c slipway -n '__slipway_command | string match -qr "^(logs|stop|kill|rm|exec)\$"' -a '(__slipway_containers)'
complete -c slipway -n '__slipway_command | string match -qvr "^(run|inspect|history|tag|rmi|save|push|logs|stop|kill|rm|exec)\$"' -F
