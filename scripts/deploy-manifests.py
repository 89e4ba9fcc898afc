"""The checks on deploy/ that a schema cannot make, for scripts/validate-kubernetes.sh.

  deploy-manifests.py files                 check deploy/ and print the files to validate
  deploy-manifests.py same-objects RENDERED  `kubectl kustomize deploy/` made exactly the files' objects
  deploy-manifests.py split IN OUT           one object per YAML document (a JSON array or a
                                            `kind: List` becomes its items), for the validator

`files` checks that deploy/kustomization.yaml only lists resources (no transformers, so each
file is what the cluster gets and can be validated as it is), that every file it lists
exists, that every YAML file under deploy/ is listed (or is an `*.example.yaml`, validated
but never applied), and that every object has a name, the namespace `envhub` unless it is
cluster-scoped, and the `app.kubernetes.io/part-of: envhub` label. Errors name the file.
Needs PyYAML (the validator's venv has it).
"""
import json
import pathlib
import sys

import yaml

DEPLOY = pathlib.Path("deploy")
KUSTOMIZATION = DEPLOY / "kustomization.yaml"
NAMESPACE = "envhub"
CLUSTER_SCOPED = {
    "Namespace", "ClusterRole", "ClusterRoleBinding",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
}


def fail(message):
    print(f"deploy-manifests: {message}", file=sys.stderr)
    sys.exit(1)


def documents(path):
    try:
        with open(path, encoding="utf-8") as file:
            return [document for document in yaml.safe_load_all(file) if document is not None]
    except (OSError, yaml.YAMLError) as error:
        fail(f"{path}: {error}")


def listed_files():
    kustomization = documents(KUSTOMIZATION)
    if len(kustomization) != 1 or not isinstance(kustomization[0], dict):
        fail(f"{KUSTOMIZATION}: expected one mapping")
    extra = set(kustomization[0]) - {"apiVersion", "kind", "resources"}
    if extra:
        fail(f"{KUSTOMIZATION}: only `resources` may be set ({', '.join(sorted(extra))} found): "
             "the files are validated as they are, so nothing may change them on the way")
    files = []
    for entry in kustomization[0].get("resources") or []:
        path = DEPLOY / entry
        if not path.is_file():
            fail(f"{KUSTOMIZATION}: lists {entry}, which is not a file under {DEPLOY}/")
        files.append(path)
    if len(set(files)) != len(files):
        fail(f"{KUSTOMIZATION}: a file is listed twice")
    return files


def check_object(path, index, document, seen):
    where = f"{path}, document {index + 1}"
    if not isinstance(document, dict):
        fail(f"{where}: not a mapping")
    kind, metadata = document.get("kind"), document.get("metadata") or {}
    if not document.get("apiVersion") or not kind or not metadata.get("name"):
        fail(f"{where}: needs apiVersion, kind and metadata.name")
    namespace = metadata.get("namespace")
    if kind in CLUSTER_SCOPED:
        if namespace is not None:
            fail(f"{where}: {kind} is cluster-scoped and takes no namespace")
    elif namespace != NAMESPACE:
        fail(f"{where}: {kind}/{metadata['name']} must set metadata.namespace: {NAMESPACE} "
             "(the kustomization sets none)")
    if (metadata.get("labels") or {}).get("app.kubernetes.io/part-of") != "envhub":
        fail(f"{where}: {kind}/{metadata['name']} lacks the label app.kubernetes.io/part-of: envhub")
    key = (kind, namespace, metadata["name"])
    if key in seen:
        fail(f"{where}: {kind}/{metadata['name']} is also in {seen[key]}")
    seen[key] = path


def files_command():
    listed = listed_files()
    examples = sorted(DEPLOY.rglob("*.example.yaml"))
    for path in sorted(DEPLOY.rglob("*.y*ml")):
        if path != KUSTOMIZATION and path not in listed and path not in examples:
            fail(f"{path} is not listed in {KUSTOMIZATION} (name it *.example.yaml if it must never be applied)")
    applied = {}
    for path in listed:
        found = documents(path)
        if not found:
            fail(f"{path}: no object in it")
        for index, document in enumerate(found):
            check_object(path, index, document, applied)
    for path in examples:
        for index, document in enumerate(documents(path)):
            check_object(path, index, document, {})
    for path in listed + examples:
        print(path)


def canonical(document):
    return json.dumps(document, sort_keys=True)


def same_objects_command(rendered):
    expected = sorted(canonical(document) for path in listed_files() for document in documents(path))
    actual = sorted(canonical(document) for document in documents(rendered))
    if expected != actual:
        missing = set(expected) - set(actual)
        added = set(actual) - set(expected)
        for text in sorted(missing)[:3]:
            print(f"  only in the files: {text[:300]}", file=sys.stderr)
        for text in sorted(added)[:3]:
            print(f"  only in kustomize's output: {text[:300]}", file=sys.stderr)
        fail(f"`kubectl kustomize {DEPLOY}` changed the objects ({len(missing)} differ): keep the kustomization to a list of files")


def split_command(source, target):
    objects = []
    for document in documents(source):
        if isinstance(document, list):
            objects.extend(document)
        elif isinstance(document, dict) and document.get("kind") == "List" and "items" in document:
            objects.extend(document["items"] or [])
        else:
            objects.append(document)
    if not objects:
        fail(f"{source}: no object in it")
    for index, item in enumerate(objects):
        if not isinstance(item, dict) or not item.get("apiVersion") or not item.get("kind"):
            fail(f"{source}: object {index + 1} has no apiVersion or kind")
    with open(target, "w", encoding="utf-8") as file:
        yaml.safe_dump_all(objects, file, sort_keys=False)


def main(arguments):
    if arguments[:1] == ["files"] and len(arguments) == 1:
        files_command()
    elif arguments[:1] == ["same-objects"] and len(arguments) == 2:
        same_objects_command(arguments[1])
    elif arguments[:1] == ["split"] and len(arguments) == 3:
        split_command(arguments[1], arguments[2])
    else:
        fail("usage: deploy-manifests.py files | same-objects RENDERED | split IN OUT")


if __name__ == "__main__":
    main(sys.argv[1:])
