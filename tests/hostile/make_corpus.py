"""Writes the hostile-manifest corpus in this directory (run it after editing a case; the files are
committed so that each case can be read on its own).

Each case is one hostile or malformed manifest. Optional headers (ASCII, at the top):
``# expect: TEXT`` must appear in the CLI's error output; ``# env: NAME='value'`` sets a variable.
Every case must fail `reconcile validate` and `reconcile plan` with exit 1, an error naming
``FILE:LINE``, no traceback, and no request to the provider (its url is a live emulator).
"""
from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent

HEAD = """version: 1
providers:
  aw:
    type: airweave
    url: ${P_URL}
    api_key: ${P_KEY}
connectors:
"""


def conn(name: str = "good-one", **over: str) -> str:
    f = {"provider": "aw", "source": "github", "target": "coll-one",
         "scope": "\n      repo_name: org/x\n      branch: main",
         "credentials": "\n      personal_access_token: ${TOK}"}
    f.update(over)
    body = "".join(f"    {k}: {v}\n" for k, v in f.items() if v is not None)
    return f"  {name}:\n{body}"


def with_conn(**over: str) -> str:
    return HEAD + conn(**over)


CASES: dict[str, str | bytes] = {
    # --- syntax
    "syntax-unclosed-flow": HEAD + conn(scope="{repo_name: org/x, branch: main"),
    "syntax-unclosed-quote": HEAD + conn(source='"github'),
    "syntax-tab-indent": HEAD + conn().replace("    source", "\tsource"),
    "syntax-bad-dedent": HEAD + conn() + "   stray: value\n",
    "syntax-undefined-alias": HEAD + conn(target="*nowhere"),
    "syntax-multiple-documents": HEAD + conn() + "---\nversion: 1\n",
    "syntax-json-trailing-garbage": '{"version": 1, "providers": {}, "connectors": {}} }\n',
    "syntax-complex-key": HEAD + "  ? [a, b]\n  : {provider: aw}\n",
    "syntax-cr-only-lines": (HEAD + conn(source="[github")).replace("\n", "\r").encode(),
    # --- structure and schema
    "empty-file": "",
    "only-comments": "# nothing here\n# at all\n",
    "top-level-list": "- version: 1\n- providers: {}\n",
    "top-level-scalar": "just a string\n",
    "connectors-as-list": HEAD.replace("connectors:\n", "connectors:\n  - good-one\n"),
    "connector-null": HEAD + "  good-one:\n",
    "missing-provider-field": HEAD + conn(provider=None),
    "unknown-field": HEAD + conn(sourcee="github"),
    "unknown-provider-ref": HEAD + conn(provider="nope"),
    "duplicate-connector-key": HEAD + conn() + conn(),
    "duplicate-provider-key": HEAD.replace("connectors:\n", "  aw:\n    type: nango\nconnectors:\n") + conn(),
    "version-two": with_conn().replace("version: 1", "version: 2"),
    # --- types
    "version-string": with_conn().replace("version: 1", 'version: "1"'),
    "version-huge-int": with_conn().replace("version: 1", "version: 99999999999999999999999999999"),
    "version-nan": with_conn().replace("version: 1", "version: .nan"),
    "source-number": with_conn(source="42"),
    "source-norway-bool": with_conn(source="no"),
    "target-list": with_conn(target="[a, b]"),
    "target-octal-int": with_conn(target="0777"),
    "source-timestamp": with_conn(source="2024-01-01"),
    "url-bool": with_conn().replace("url: ${P_URL}", "url: true"),
    "credential-number": with_conn(credentials="\n      personal_access_token: 12345"),
    "scope-branch-mapping": with_conn(scope="\n      repo_name: org/x\n      branch: {a: 1}"),
    "name-null-key": HEAD + conn(name="~"),
    "name-path-traversal": HEAD + conn(name="\"../../etc/passwd\""),
    "name-with-space": HEAD + conn(name="\"good one\""),
    # --- resource exhaustion
    "alias-bomb": "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)) + with_conn(),
    "alias-recursive": "version: 1\nloop: &loop [*loop]\n" + with_conn().replace("version: 1\n", ""),
    "merge-key-bomb": "base: &b {x: 1}\n" + "".join(f"m{i}: &m{i} {{<<: *{'b' if i == 0 else f'm{i-1}'}, y{i}: 1}}\n"
                                               for i in range(50)) + with_conn(),
    "deep-nesting-lists": with_conn(scope="\n      repo_name: " + "[" * 3000 + "]" * 3000),
    "deep-nesting-maps": with_conn(scope="\n      repo_name: " + "{a: " * 2000 + "1" + "}" * 2000),
    "very-long-key": with_conn(**{"k" * 20000: "v"}),
    "very-long-name": HEAD + conn(name="n" * 5000),
    "very-long-value": with_conn(source="x" * 200000),
    # --- YAML tags
    "tag-python-object": with_conn(source='!!python/object/apply:os.system ["echo pwned"]'),
    "tag-python-name": with_conn(source="!!python/name:os.system"),
    "tag-custom": with_conn(source="!Ref github"),
    "tag-binary": with_conn(source="!!binary aGVsbG8="),
    "tag-set": with_conn(scope="!!set {a, b}"),
    # --- unicode tricks in names
    "unicode-rtl-override": HEAD + conn(name="good\u202eeno-dlo"),
    "unicode-zero-width": HEAD + conn(name="good\u200b-one"),
    "unicode-homoglyph": HEAD + conn(name="g\u043e\u043ed-one"),  # Cyrillic o
    "unicode-fullwidth": HEAD + conn(name="\uff47ood-one"),
    "unicode-combining": HEAD + conn(name="goo\u0301d-one"),
    "unicode-bidi-in-target": with_conn(target='"coll\u2066-one"'),
    # --- encodings and bytes
    "nul-byte": (with_conn().replace("source: github", "source: git\x00hub")).encode(),
    "control-char-bell": with_conn(source='"git\\ahub"'),
    "raw-control-char": with_conn(source="git\x07hub").encode(),
    "bom-then-error": b"\xef\xbb\xbf" + with_conn(source="[github").encode(),
    "crlf-then-error": with_conn(source="[github").replace("\n", "\r\n").encode(),
    "not-utf8-latin1": with_conn(source="gith\xfcb").encode("latin-1"),
    "utf16": with_conn().encode("utf-16"),
    # --- variables
    "env-value-with-reference": "# env: BAD_URL='${P_URL}'\n" + with_conn().replace("${P_URL}", "${BAD_URL}"),
    "env-value-with-newline": "# env: BAD_TARGET='coll-one\\nsource: gitlab'\n" + with_conn(target="${BAD_TARGET}"),
    "env-value-header-injection": "# env: BAD_URL='http://127.0.0.1:9/\\r\\nX-Injected: 1'\n"
                                  + with_conn().replace("${P_URL}", "${BAD_URL}"),
    "variable-nested": with_conn(target="${A${B}}"),
    "variable-empty": with_conn(target="${}"),
    "variable-bad-name": with_conn(target="${1X}"),
    "variable-unset": with_conn(target="${NOT_SET_ANYWHERE}"),
    "literal-credential": with_conn(credentials="\n      personal_access_token: ghp_literal_in_git_123"),
    # --- transport and state
    "insecure-http-remote": with_conn().replace("${P_URL}", "http://example.com"),
    "url-file-scheme": with_conn().replace("${P_URL}", "file:///etc/passwd"),
    "state-path-traversal": with_conn().replace("providers:", "state:\n  backend: file\n  path: ../../etc/x\nproviders:"),
    "state-path-absolute": with_conn().replace("providers:", "state:\n  backend: file\n  path: /etc/passwd\nproviders:"),
    "state-path-nul": with_conn().replace("providers:", 'state:\n  backend: file\n  path: "a\\0b"\nproviders:'),
    "state-unknown-backend": with_conn().replace("providers:", "state:\n  backend: s3\nproviders:"),
}


def main() -> None:
    for old in HERE.glob("*.yaml"):
        old.unlink()
    for name, text in CASES.items():
        data = text.encode() if isinstance(text, str) else text
        (HERE / f"{name}.yaml").write_bytes(data)
    print(f"{len(CASES)} cases")


if __name__ == "__main__":
    main()
