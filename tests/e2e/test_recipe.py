"""The recipe (issue 12): Python/Django projects built with no Dockerfile.

examples/shop (unpackaged: manage.py + requirements.txt) and examples/blog (packaged: PEP 621
pyproject.toml) are copied to a temp dir without any Dockerfile, built, run and edited. Each
assertion can fail:
1. detection: `slipway recipe` reports the shape, WSGI app, locales; a directory that is no
   Python project keeps the "no Dockerfile" error, with a hint;
2. build, run (migrate, gunicorn on $PORT, published with -p), the page in English and
   German, a static file;
3. the image: STATIC_ROOT and .mo files present, no compiler, no source tree for the packaged
   project, non-root user, labels, PYTHONUNBUFFERED; a management command runs in it;
4. caching, read from `--progress=plain` (`#N CACHED`): the dependency install survives a
   comment, a reformatting and a version bump, not a changed requirement; a .py edit re-runs
   exactly the steps the recipe claims;
5. `slipway recipe --dockerfile` builds with `-f` into the very same image.

Needs root, the base image (scripts/base-image.sh, cached) and the loopback wheelhouse
(scripts/wheelhouse.sh); no Debian mirror (the base already has gettext).
"""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from test_django import Image, get, instruction_steps, parse_plain, wait_http, free_port

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(REPO, "examples")
BUILD_TIMEOUT = 1800
EPOCH = "1700000000"


class Recipe:
    def __init__(self, binary, root, index_url, workdir):
        self.binary = binary
        self.root = root
        self.index_url = index_url
        self.workdir = workdir
        self.env = dict(os.environ, SLIPWAY_ROOT=root, SOURCE_DATE_EPOCH=EPOCH)

    def __call__(self, *args, timeout=600, check=True, root=None, epoch=EPOCH):
        env = dict(self.env, SLIPWAY_ROOT=root or self.root)
        if epoch is None:
            env.pop("SOURCE_DATE_EPOCH", None)
        p = subprocess.run(
            [self.binary, *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
        if check:
            assert p.returncode == 0, f"slipway {' '.join(args)} exited {p.returncode}:\n{p.stdout[-4000:]}"
        return p

    def build(self, tag, context, *extra, root=None, epoch=EPOCH):
        p = self(
            "build",
            "--progress=plain",
            "--build-arg",
            "PYTHON_IMAGE=python:slim",
            "--build-arg",
            f"PIP_INDEX_URL={self.index_url}",
            "-t",
            tag,
            *extra,
            context,
            timeout=BUILD_TIMEOUT,
            root=root,
            epoch=epoch,
        )
        steps = parse_plain(p.stdout)
        assert instruction_steps(steps), p.stdout[-3000:]
        return steps, p.stdout

    def image_id(self, tag, root=None):
        return self("images", "-q", "--no-trunc", tag, root=root).stdout.split()[0]

    def image(self, tag):
        out = os.path.join(self.workdir, tag.replace(":", "_").replace("/", "_") + ".tar")
        if os.path.exists(out):
            os.unlink(out)
        self("save", "-o", out, "--format", "oci", tag)
        return Image(out)

    def import_base(self, root, tar):
        self("import", "--change", 'CMD ["python3"]', tar, "python:slim", timeout=900, root=root)


@pytest.fixture(scope="module")
def rc(slipway_bin, python_base_tar, tmp_path_factory):
    work = tmp_path_factory.mktemp("recipe")
    root = str(work / "store")
    wheelhouse = subprocess.run(
        [os.path.join(REPO, "scripts", "wheelhouse.sh")], check=True, stdout=subprocess.PIPE, text=True
    ).stdout.strip()
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", wheelhouse, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        index = f"http://127.0.0.1:{port}/simple/"
        # any Django 3.2.x wheel: a Debian security update may move the patch level
        assert re.search(r"Django-3\.2\.\d+-", wait_http(index + "django/", timeout=20))
        r = Recipe(slipway_bin, root, index, str(work))
        r.base_tar = python_base_tar
        r.import_base(root, python_base_tar)
        yield r
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work / "store", ignore_errors=True)


def copy_example(name, dest):
    """The example in a fresh directory, with no Dockerfile (the examples have none anyway)."""
    path = os.path.join(str(dest), name)
    shutil.copytree(os.path.join(EXAMPLES, name), path)
    assert not os.path.exists(os.path.join(path, "Dockerfile"))
    return path


@pytest.fixture(scope="module")
def built(rc, tmp_path_factory):
    """Each example built once (lazily) from its own copy: name -> (context, steps, output)."""
    done = {}

    def build(name):
        if name not in done:
            ctx = copy_example(name, tmp_path_factory.mktemp(name))
            steps, out = rc.build(f"{name}:recipe", ctx)
            done[name] = (ctx, steps, out)
        return done[name]

    return build


def edit(path, old, new):
    with open(path) as f:
        text = f.read()
    assert old in text, f"{old!r} not in {path}"
    with open(path, "w") as f:
        f.write(text.replace(old, new, 1))


def ran(steps):
    """(stage, instruction) of the layer steps that ran (not CACHED)."""
    return sorted(
        (s.stage, s.instruction.split(" ", 1)[0] + " " + s.instruction.split(" ", 1)[1][:40])
        for s in instruction_steps(steps)
        if s.instruction.split(" ", 1)[0] in ("RUN", "COPY") and not s.cached
    )


def step(steps, stage, needle):
    hits = [s for s in instruction_steps(steps) if s.stage == stage and needle in s.instruction]
    assert len(hits) == 1, (stage, needle, hits)
    return hits[0]


# --- 1. detection ----------------------------------------------------------------------------


def test_recipe_describes_the_projects(rc):
    shop = rc("recipe", os.path.join(EXAMPLES, "shop")).stdout
    assert "unpackaged" in shop and "mysite.wsgi:application" in shop, shop
    assert "django<4.0,>=3.2" in shop and "gunicorn" in shop, shop
    assert "locales:          de" in shop, shop
    blog = rc("recipe", os.path.join(EXAMPLES, "blog")).stdout
    assert "packaged (built into a wheel" in blog and "blog 0.1.0" in blog, blog
    assert "pyproject.toml [project] dependencies" in blog, blog
    df = rc("recipe", "--dockerfile", os.path.join(EXAMPLES, "blog")).stdout
    assert "FROM base AS package" in df and "COPY <<'EOF' /slipway/requirements.txt" in df, df


def test_no_python_project_keeps_the_error(rc, tmp_path):
    (tmp_path / "notes.txt").write_text("hello\n")
    p = rc("build", str(tmp_path), check=False)
    assert p.returncode == 2, p.stdout
    assert "Dockerfile" in p.stdout and "manage.py" in p.stdout, p.stdout
    p = rc("recipe", str(tmp_path), check=False)
    assert p.returncode == 2 and "not a Python project" in p.stdout, p.stdout


def test_missing_wsgi_app_names_what_was_searched(rc, tmp_path):
    ctx = copy_example("shop", tmp_path)
    edit(os.path.join(ctx, "mysite", "settings.py"), 'WSGI_APPLICATION = "mysite.wsgi.application"\n', "")
    p = rc("build", ctx, check=False)
    assert p.returncode == 2, p.stdout
    assert "WSGI_APPLICATION" in p.stdout and "mysite.settings" in p.stdout and "wsgi-app" in p.stdout, p.stdout


# --- 2./3. build, run, image -----------------------------------------------------------------


SITES = {
    # name: (static file URL path, STATIC_ROOT file in the image, English, German)
    "shop": ("pages/site.css", "app/staticfiles/pages/site.css", "Welcome to the shop", "Willkommen im Laden"),
    "blog": ("blog/site.css", "app/static/blog/site.css", "Welcome to the blog", "Willkommen im Blog"),
}


@pytest.mark.parametrize("name", list(SITES))
def test_builds_and_serves_two_languages(rc, built, name):
    built(name)
    css, _, english, german = SITES[name]
    port = free_port()
    log = open(os.path.join(rc.workdir, f"run-{name}-{port}.log"), "w+")
    proc = subprocess.Popen(
        [rc.binary, "run", "--rm", "-p", f"127.0.0.1:{port}:{port}", "-e", f"PORT={port}", "-e", "GUNICORN_WORKERS=1", f"{name}:recipe"],
        env=rc.env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        page = wait_http(url, timeout=90, proc=proc)
        assert english in page and "1 visit" in page, page
        de = get(url, headers={"Accept-Language": "de"})
        assert german in de and "2 Besuche" in de, de
        assert f"{name}:" in get(f"{url}static/{css}")
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=30)
    log.seek(0)
    out = log.read()
    assert "Applying " in out and "Booting worker" in out, out[-3000:]


@pytest.mark.parametrize("name", list(SITES))
def test_runtime_image_contents(rc, built, name):
    built(name)
    img = rc.image(f"{name}:recipe")
    _, static_file, _, _ = SITES[name]
    assert img.has(static_file), img.glob(r"^app/")[:40]
    assert img.glob(r"/de/LC_MESSAGES/django\.mo$"), "no compiled translation"
    for compiler in ("usr/bin/gcc", "usr/bin/cc", "usr/bin/x86_64-linux-gnu-gcc-12", "usr/bin/make"):
        assert not img.has(compiler), compiler
    assert img.has("usr/local/bin/gunicorn") and img.has("usr/local/bin/slipway-entrypoint")
    assert img.glob(r"^usr/local/lib/python3[^/]*/[a-z-]+-packages/django/__init__\.py$")
    cfg = img.config["config"]
    assert cfg["User"] == "10001:10001"
    assert "PYTHONUNBUFFERED=1" in cfg["Env"]
    assert cfg["Labels"]["org.opencontainers.image.title"] == name
    assert cfg["Entrypoint"] == ["/usr/local/bin/slipway-entrypoint"]
    if name == "blog":
        assert cfg["Labels"]["org.opencontainers.image.version"] == "0.1.0"
        # Packaged: the installed package, and no source tree anywhere.
        assert img.glob(r"-packages/blog/views\.py$") and img.glob(r"-packages/blog/templates/blog/index\.html$")
        assert not img.glob(r"^(app|src)/(blog|manage\.py|pyproject\.toml)"), img.glob(r"^(app|src)/")
    else:
        assert img.has("app/pages/views.py") and img.has("app/manage.py")
        assert img.glob(r"^app/pages/__pycache__/views\.cpython-[0-9]+\.pyc$"), "no bytecode"
        assert not img.glob(r"^app/(\.venv|db\.sqlite3)")


@pytest.mark.parametrize("name", list(SITES))
def test_management_command_runs(rc, built, name):
    built(name)
    p = rc("run", "--rm", f"{name}:recipe", "sh", "-c", "python -m django migrate -v 0 && python -m django visits")
    assert "visits: 0" in p.stdout, p.stdout


# --- 4. caching ------------------------------------------------------------------------------


def test_dependency_layer_keyed_on_the_set(rc, built, tmp_path):
    built("shop")
    ctx = copy_example("shop", tmp_path)
    req = os.path.join(ctx, "requirements.txt")
    # A comment, blank lines and another spelling of the same requirement: same set.
    with open(req, "w") as f:
        f.write("# reformatted\n\n   django <4.0 ,>= 3.2    # web\n\n")
    steps, _ = rc.build("shop:reqfmt", ctx)
    assert step(steps, "deps", "pip install").cached, ran(steps)
    assert ran(steps) == [], f"nothing should re-run: {ran(steps)}"
    # A changed requirement reinstalls.
    with open(req, "w") as f:
        f.write("Django>=3.2,<4.0,!=3.2.0\n")
    steps, _ = rc.build("shop:reqpin", ctx)
    assert not step(steps, "deps", "pip install").cached


def test_version_bump_keeps_dependency_install(rc, built, tmp_path):
    built("blog")
    ctx = copy_example("blog", tmp_path)
    edit(os.path.join(ctx, "pyproject.toml"), 'version = "0.1.0"', 'version = "0.2.0"')
    steps, _ = rc.build("blog:bump", ctx)
    assert step(steps, "deps", "pip install").cached
    assert not step(steps, "package", "RUN python /slipway/build.py").cached
    img = rc.image("blog:bump")
    assert img.config["config"]["Labels"]["org.opencontainers.image.version"] == "0.2.0"


def test_py_edit_reruns_only_the_code_steps(rc, built, tmp_path):
    built("shop")
    built("blog")
    shop = copy_example("shop", tmp_path / "s")
    edit(os.path.join(shop, "pages", "views.py"), 'GREETING = "shop"', 'GREETING = "edited"')
    steps, _ = rc.build("shop:edit", shop)
    assert [(st, i.split(" ", 1)[0]) for st, i in ran(steps)] == [
        ("app", "COPY"),
        ("app", "RUN"),
        ("runtime", "COPY"),
    ], ran(steps)
    assert not step(steps, "runtime", "COPY --from=app").cached

    blog = copy_example("blog", tmp_path / "b")
    edit(os.path.join(blog, "blog", "views.py"), 'GREETING = "blog"', 'GREETING = "edited"')
    steps, _ = rc.build("blog:edit", blog)
    assert [(st, i.split(" ", 1)[0]) for st, i in ran(steps)] == [
        ("package", "COPY"),
        ("package", "RUN"),
        ("runtime", "COPY"),
    ], ran(steps)
    assert not step(steps, "runtime", "COPY --from=package").cached


def test_static_edit_reruns_collectstatic_not_messages(rc, built, tmp_path):
    built("shop")
    ctx = copy_example("shop", tmp_path)
    with open(os.path.join(ctx, "pages", "static", "pages", "site.css"), "a") as f:
        f.write("h1 { color: teal; }\n")
    steps, _ = rc.build("shop:css", ctx)
    assert not step(steps, "static", "collectstatic").cached
    assert step(steps, "messages", "msgfmt").cached
    assert step(steps, "deps", "pip install").cached


def test_each_input_edited_after_a_noop_is_seen(rc, built, tmp_path):
    """A no-op rebuild, then an edit of each kind of file the recipe reads (requirements,
    settings, manage.py's settings module, a .po file, code): each rebuild sees it."""
    built("shop")
    ctx = copy_example("shop", tmp_path)

    def rebuild():
        steps, _ = rc.build("shop:inputs", ctx)
        return steps

    def noop():
        steps = rebuild()
        assert ran(steps) == [], f"nothing should re-run: {ran(steps)}"

    noop()
    noop()
    with open(os.path.join(ctx, "requirements.txt"), "a") as f:
        f.write("sqlparse>=0.2\n")
    assert not step(rebuild(), "deps", "pip install").cached

    noop()
    edit(os.path.join(ctx, "mysite", "settings.py"), 'BASE_DIR / "staticfiles"', 'BASE_DIR / "collected"')
    assert not step(rebuild(), "static", "collectstatic").cached
    img = rc.image("shop:inputs")
    assert img.has("app/collected/pages/site.css") and not img.has("app/staticfiles/pages/site.css")

    noop()
    shutil.copy(os.path.join(ctx, "mysite", "settings.py"), os.path.join(ctx, "mysite", "settings_alt.py"))
    edit(os.path.join(ctx, "manage.py"), '"mysite.settings"', '"mysite.settings_alt"')
    rebuild()
    assert "DJANGO_SETTINGS_MODULE=mysite.settings_alt" in rc.image("shop:inputs").config["config"]["Env"]

    noop()
    edit(os.path.join(ctx, "pages", "locale", "de", "LC_MESSAGES", "django.po"),
         '"Willkommen im Laden"', '"Willkommen im Shop"')
    steps = rebuild()
    assert not step(steps, "messages", "msgfmt").cached
    assert step(steps, "deps", "pip install").cached

    noop()
    edit(os.path.join(ctx, "pages", "views.py"), 'GREETING = "shop"', 'GREETING = "edited"')
    assert [(st, i.split(" ", 1)[0]) for st, i in ran(rebuild())] == [
        ("app", "COPY"),
        ("app", "RUN"),
        ("runtime", "COPY"),
    ]
    noop()


# --- 5. the Dockerfile it prints -------------------------------------------------------------


def test_printed_dockerfile_builds_the_same_image(rc, built, tmp_path):
    ctx, _, _ = built("shop")
    df = tmp_path / "Dockerfile.recipe"
    df.write_text(rc("recipe", "--dockerfile", ctx).stdout)
    steps, _ = rc.build("shop:fromfile", ctx, "-f", str(df))
    assert rc.image_id("shop:fromfile") == rc.image_id("shop:recipe")


def test_article_example_builds_without_its_dockerfile(rc, tmp_path):
    """examples/django (the article's project, packaged with setup.py) with `--recipe python`:
    the recipe ignores its Dockerfiles and builds what they build, by hand-written steps."""
    ctx = str(tmp_path / "foo")
    shutil.copytree(os.path.join(EXAMPLES, "django"), ctx)
    steps, out = rc.build("foo:recipe", ctx, "--recipe", "python")
    assert "with the Python recipe (packaged, foo.wsgi:application)" in out, out[:2000]
    img = rc.image("foo:recipe")
    assert img.has("app/static.dist/foo/style.css")
    assert img.glob(r"-packages/foo/locale/de/LC_MESSAGES/django\.mo$")
    assert not img.glob(r"^app/(foo|manage\.py|setup\.py)")
    port = free_port()
    proc = subprocess.Popen(
        [rc.binary, "run", "--rm", "-p", f"127.0.0.1:{port}:{port}", "-e", f"PORT={port}", "-e", "GUNICORN_WORKERS=1", "foo:recipe"],
        env=rc.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        assert "Hello from foo" in wait_http(url, timeout=90, proc=proc)
        de = get(url, headers={"Accept-Language": "de"})
        assert "Hallo von foo" in de and "2 Mal besucht" in de, de
        assert "foo" in get(f"{url}static/foo/style.css")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_reproducible_in_two_fresh_stores(rc, tmp_path):
    """No SOURCE_DATE_EPOCH given: the recipe clamps times itself (to 0), bytecode is
    unchecked-hash, so two cold builds in two empty stores give one image digest."""
    ids = []
    for k in ("one", "two"):
        root = str(tmp_path / k)
        rc.import_base(root, rc.base_tar)
        ctx = copy_example("shop", tmp_path / f"ctx-{k}")
        rc.build("shop:repro", ctx, root=root, epoch=None)
        ids.append(rc("images", "-q", "--no-trunc", "shop:repro", root=root).stdout.split()[0])
        created = rc("inspect", "shop:repro", root=root).stdout
        assert "1970-01-01T00:00:00Z" in created, created[:2000]
    assert ids[0] == ids[1], ids


def test_packaging_lint_reports_the_mistakes(rc, tmp_path):
    """examples/gallery: a management command under directories without __init__.py and
    templates without package data. Both are warnings naming the files and the fix; with
    SLIPWAY_LINT=error the build fails."""
    ctx = copy_example("gallery", tmp_path)
    _, out = rc.build("gallery:recipe", ctx)
    lint = [l for l in out.splitlines() if "slipway lint: warning:" in l]
    assert len(lint) == 2, lint
    assert "gallery/management/commands/hello.py did not ship" in lint[0], lint
    assert "add an empty gallery/management/__init__.py and gallery/management/commands/__init__.py" in lint[0]
    assert "gallery/templates/gallery/index.html did not ship" in lint[1], lint
    assert "recursive-include gallery/templates *" in lint[1] and "package-data" in lint[1]
    p = rc(
        "build",
        "--progress=plain",
        "--build-arg",
        "PYTHON_IMAGE=python:slim",
        "--build-arg",
        f"PIP_INDEX_URL={rc.index_url}",
        "--build-arg",
        "SLIPWAY_LINT=error",
        "-t",
        "gallery:strict",
        ctx,
        check=False,
        timeout=BUILD_TIMEOUT,
    )
    assert p.returncode != 0, p.stdout[-2000:]
    assert "2 finding(s), and SLIPWAY_LINT=error: failing the build" in p.stdout, p.stdout[-3000:]
    # The fixed project has no findings: the shop's and blog's builds have none either.
    for d in ("management", "management/commands"):
        open(os.path.join(ctx, "gallery", d, "__init__.py"), "w").close()
    with open(os.path.join(ctx, "MANIFEST.in"), "w") as f:
        f.write("recursive-include gallery/templates *\n")
    edit(os.path.join(ctx, "setup.py"), "packages=find_packages(),", "packages=find_packages(), include_package_data=True,")
    _, out = rc.build("gallery:fixed", ctx, "--build-arg", "SLIPWAY_LINT=error")
    assert "slipway lint" not in out, [l for l in out.splitlines() if "slipway lint" in l]


def test_settings_secret_at_build_never_stored(rc, built, tmp_path):
    """Settings that need a value at import time: without it collectstatic fails with the
    traceback's tail and how to pass it; given as --secret id=django-env, the build works and
    the value is nowhere in the image (files, config, history)."""
    built("shop")
    ctx = copy_example("shop", tmp_path)
    edit(
        os.path.join(ctx, "mysite", "settings.py"),
        'SECRET_KEY = os.environ.get("SHOP_SECRET_KEY", "example-only-not-secret-8d1e4c")',
        'SECRET_KEY = os.environ["SHOP_SECRET_KEY"]',
    )
    args = ["build", "--progress=plain", "--build-arg", "PYTHON_IMAGE=python:slim",
            "--build-arg", f"PIP_INDEX_URL={rc.index_url}", "-t", "shop:secret"]
    p = rc(*args, ctx, check=False, timeout=BUILD_TIMEOUT)
    assert p.returncode != 0, p.stdout[-2000:]
    assert "KeyError: 'SHOP_SECRET_KEY'" in p.stdout, p.stdout[-3000:]
    assert "--secret id=django-env,src=FILE" in p.stdout, p.stdout[-3000:]
    value = "s3cr3t-" + os.urandom(8).hex()
    env_file = tmp_path / "build.env"
    env_file.write_text(f"SHOP_SECRET_KEY={value}\n")
    rc(*args, "--secret", f"id=django-env,src={env_file}", ctx, timeout=BUILD_TIMEOUT)
    out = os.path.join(rc.workdir, "secret.tar")
    rc("save", "-o", out, "shop:secret")
    # Every layer the build made, uncompressed, byte for byte (the first is the base's).
    img = Image(out)
    for lp in img._layer_paths()[1:]:
        assert value.encode() not in img._open_layer(lp).read(), lp
    assert value not in json.dumps(img.config)


def test_unresolvable_requirement_names_its_file_and_line(rc, tmp_path):
    ctx = copy_example("shop", tmp_path)
    with open(os.path.join(ctx, "requirements.txt"), "w") as f:
        f.write("# deps\nDjango>=3.2,<4.0\nno-such-project-7f3a==1.0  # oops\n")
    p = rc("build", "--progress=plain", "--build-arg", "PYTHON_IMAGE=python:slim",
           "--build-arg", f"PIP_INDEX_URL={rc.index_url}", "-t", "shop:bad", ctx,
           check=False, timeout=BUILD_TIMEOUT)
    assert p.returncode != 0
    assert "No matching distribution found for no-such-project-7f3a" in p.stdout, p.stdout[-2000:]
    assert "`no-such-project-7f3a` is required by requirements.txt:3: no-such-project-7f3a==1.0" in p.stdout, p.stdout[-2000:]


def test_computed_setup_py_requirements_use_egg_info(rc, tmp_path):
    """A setup.py whose install_requires is computed (read from a file here): the article's
    egg_info runs in a stage of its own, without network; a version bump re-runs it but not
    the dependency install, since the requirement list it writes is the same."""
    ctx = str(tmp_path / "foo")
    shutil.copytree(os.path.join(EXAMPLES, "django"), ctx)
    os.unlink(os.path.join(ctx, "requirements.txt"))
    with open(os.path.join(ctx, "requirements-base.txt"), "w") as f:
        f.write("Django>=3.2,<4.0\n")
    edit(os.path.join(ctx, "setup.py"), "install_requires=[", 'install_requires=open("requirements-base.txt").read().split() or [')
    assert "computed" in rc("recipe", ctx).stdout
    steps, _ = rc.build("foo:egg", ctx, "--recipe", "python")
    assert not step(steps, "egginfo", "egg_info").cached
    img = rc.image("foo:egg")
    assert img.glob(r"-packages/django/__init__\.py$") and img.glob(r"-packages/foo/views\.py$")
    edit(os.path.join(ctx, "setup.py"), 'version="1.0.0"', 'version="1.0.1"')
    steps, _ = rc.build("foo:egg", ctx, "--recipe", "python")
    assert not step(steps, "egginfo", "egg_info").cached, "setup.py changed"
    assert step(steps, "deps", "pip install").cached, "the requirement list did not change"
