"""Writes the hostile-manifest corpus in this directory (run it after editing a case; the files are
committed so that each case can be read on its own).

Each case is one hostile or malformed manifest. Optional headers (ASCII, at the top):
``# expect: TEXT`` must appear in the CLI's error output; ``# env: NAME='value'`` sets a variable.
Every case must fail `reconcile validate` and `reconcile plan` with exit 1, an error naming
``FILE:LINE``, no traceback, and no request to the provider (its url is a live emulator).

``valid/`` holds manifests that are valid but carry hostile text (Markdown fences, ``</details>``,
terminal escapes, bidi overrides, ``${VAR}`` reads of other variables): validate, plan and apply
must succeed; ``# expect: TEXT`` must appear in the plan output and ``# never: TEXT`` (a Python
string literal's content, escapes allowed) must not.
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


AIRSTORE = HEAD.replace("aw:\n    type: airweave", "aw:\n    type: airstore")
AIMABLE = HEAD.replace("aw:\n    type: airweave", "aw:\n    type: aimable")


def airstore_conn(**over: str) -> str:
    return conn(**{"source": "gmail", "target": "ws-one", "scope": None,
                   "credentials": "\n      access_token: ${TOK}", **over})


def aimable_conn(**over: str) -> str:
    return conn(**{"source": "notion", "target": "space-one/coll-one", "scope": None, **over})


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
    # both the manifest (allow_insecure_http) and the CI (an http:// entry) must consent to plain http
    "insecure-http-remote": "# expect: RECONCILE_ALLOWED_HOSTS=http://example.com in its environment\n"
                            + with_conn().replace("${P_URL}", "http://example.com"),
    "url-file-scheme": with_conn().replace("${P_URL}", "file:///etc/passwd"),
    "state-path-traversal": with_conn().replace("providers:", "state:\n  backend: file\n  path: ../../etc/x\nproviders:"),
    "state-path-absolute": with_conn().replace("providers:", "state:\n  backend: file\n  path: /etc/passwd\nproviders:"),
    "state-path-nul": with_conn().replace("providers:", 'state:\n  backend: file\n  path: "a\\0b"\nproviders:'),
    "state-unknown-backend": with_conn().replace("providers:", "state:\n  backend: s3\nproviders:"),
    # --- issue 13: values that passed validate and failed later (or never)
    "name-trailing-newline": "# expect: connector name\n" + HEAD + conn(name='"good-one\\n"'),
    "provider-name-trailing-newline": "# expect: provider name\n" + with_conn().replace("  aw:\n", '  "aw\\n":\n', 1),
    "target-trailing-newline": "# expect: target\n" + with_conn(target='"coll-one\\n"'),
    "repo-name-trailing-newline": "# expect: repo_name\n" + with_conn(
        scope='\n      repo_name: "org/x\\n"\n      branch: main'),
    "env-target-trailing-newline": "# env: T='coll-one\\n'\n# expect: line break\n" + with_conn(target="${T}"),
    "url-bad-ipv6": "# expect: is not a valid URL\n" + with_conn().replace("${P_URL}", '"https://[::g]:8443"'),
    "url-ipv4-in-brackets": "# expect: is not a valid URL\n" + with_conn().replace("${P_URL}", '"https://[1.2.3.4]"'),
    "url-crlf-literal": "# expect: line break\n" + with_conn().replace("${P_URL}", '"https://api.airweave.ai\\r\\nX-A: 1"'),
    "url-port-text": "# expect: Port could not be cast\n" + with_conn().replace("${P_URL}", "https://api.airweave.ai:abc"),
    "url-port-range": "# expect: Port out of range\n" + with_conn().replace("${P_URL}", "https://api.airweave.ai:99999"),
    "url-port-zero": "# expect: port 0\n" + with_conn().replace("${P_URL}", "https://api.airweave.ai:0"),
    "url-userinfo": "# expect: user:password@\n" + with_conn().replace("${P_URL}", "https://ci:hunter22@api.airweave.ai"),
    "url-env-userinfo": "# env: U='https://ci:hunter22@api.airweave.ai'\n# expect: user:password@\n"
                        + with_conn().replace("${P_URL}", "${U}"),
    "url-query": "# expect: query or fragment\n" + with_conn().replace("${P_URL}", "https://api.airweave.ai/?x=1"),
    "float-nan-in-scope": "# expect: NaN\n" + with_conn(scope="\n      repo_name: org/x\n      branch: .nan"),
    "float-inf-description": "# expect: infinite\n" + with_conn(description=".inf"),
    "float-minus-inf-version": "# expect: infinite\n" + with_conn().replace("version: 1", "version: -.inf"),
    "float-overflow": "# expect: infinite\n" + with_conn(description="1.0e+400"),
    "cron-february-31": "# expect: never fires\n" + with_conn(schedule='\n      cron: "0 0 31 2 *"'),
    "cron-april-31": "# expect: never fires\n" + with_conn(schedule='\n      cron: "0 0 31 4 *"'),
    "every-too-long": "# expect: longer than 366 days\n" + with_conn(schedule="\n      every: 400d"),
    "every-huge": "# expect: longer than 366 days\n" + with_conn(schedule="\n      every: 99999999999999999999h"),
    "tag-on-key": "# expect: on a key\n" + HEAD + conn().replace("    source:", "    !k source:"),
    "tag-python-on-key": "# expect: on a key\n" + HEAD + conn().replace("    target:", "    !!python/name:os.system target:"),
    "tag-on-mapping": "# expect: on a mapping\n" + with_conn(scope="!custom {repo_name: org/x, branch: main}"),
    "tag-omap": "# expect: unsupported YAML tag\n" + with_conn(scope="!!omap [{repo_name: org/x}, {branch: main}]"),
    "tag-on-sequence": "# expect: on a list\n" + with_conn(lifecycle="\n      ignore_changes: !seq [scope]"),
    "state-path-newline": "# expect: must be a file path inside the manifest directory\n" + with_conn().replace(
        "providers:", 'state:\n  backend: file\n  path: "state.json\\n"\nproviders:'),
    "state-path-into-git": "# expect: inside .git/\n" + with_conn().replace(
        "providers:", "state:\n  backend: file\n  path: .git/hooks/post-checkout\nproviders:"),
    "state-path-is-manifest": "# expect: is a manifest file\n" + with_conn().replace(
        "providers:", "state:\n  backend: file\n  path: state-path-is-manifest.yaml\nproviders:"),
    "empty-secret": "# env: TOK=''\n# expect: TOK is empty\n" + with_conn(),
    "empty-api-key": "# env: P_KEY=''\n# expect: P_KEY is empty\n" + with_conn(),
    "blank-secret": "# env: TOK='   '\n# expect: TOK is empty\n" + with_conn(),
    "short-secret": "# env: TOK='abc'\n# expect: shorter than 4 characters\n" + with_conn(),
    "one-char-api-key": "# env: P_KEY='k'\n# expect: shorter than 4 characters\n" + with_conn(),
    # --- issue 13: URL path injection (targets and names go into URL paths)
    "airstore-target-dotdot": "# expect: '.' and '..' are not names\n" + AIRSTORE + airstore_conn(target="../../../admin/ws"),
    "airstore-target-dot": "# expect: '.' and '..' are not names\n" + AIRSTORE + airstore_conn(target="."),
    "airstore-target-control": "# expect: control character\n" + AIRSTORE + airstore_conn(target='"ws\\e[2J"'),
    "airstore-member-dotdot": "# expect: '.' and '..' are not names\n" + AIRSTORE + airstore_conn(member='".."'),
    "aimable-target-dotdot": "# expect: '.' and '..' are not names\n" + AIMABLE + aimable_conn(target="../.."),
    "aimable-collection-dotdot": "# expect: '.' and '..' are not names\n" + AIMABLE + aimable_conn(target="space-one/.."),
    "aimable-target-newline": "# expect: target\n" + AIMABLE + aimable_conn(target='"space-one/coll-one\\n"'),
}

# valid manifests that carry hostile text (markup, escapes, variables): they must plan and apply,
# showing that text escaped or masked; written to valid/
VALID: dict[str, str] = {
    "markdown-fence-in-scope": with_conn(
        scope='\n      repo_name: org/x\n      branch: "main\\n```\\n</details>\\n<img src=x onerror=alert(1)>"'),
    "long-backtick-run": with_conn(scope='\n      repo_name: org/x\n      branch: "x````````y"'),
    "escape-in-description": "# never: \\x1b[2J\n# never: \\r\n" + with_conn(description='"hi\\e[2J\\e]0;pwned\\a\\rok"'),
    "bidi-in-description": "# never: \\u202e\n# never: \\u2066\n" + with_conn(description='"harmless \\u202eevil\\u2066x\\u2069"'),
    "nul-in-scope": "# never: \\x00\n" + with_conn(scope='\n      repo_name: org/x\n      branch: "ma\\0in"'),
    "env-in-description": "# env: OTHER_SECRET='AKIA-hostile-other-secret-9999'\n# never: AKIA-hostile-other-secret-9999\n"
                          "# expect: (from $OTHER_SECRET)\n" + with_conn(description='"${OTHER_SECRET}"'),
    "env-inside-description": "# env: OTHER_SECRET='AKIA-hostile-other-secret-9999'\n"
                              "# never: AKIA-hostile-other-secret-9999\n"
                              + with_conn(description='"leak: ${OTHER_SECRET} :end"'),
    "env-short-in-branch": "# env: SHORTV='xyz'\n# expect: (from $SHORTV)\n"
                           + with_conn(scope="\n      repo_name: org/x\n      branch: ${SHORTV}"),
}


def main() -> None:
    for old in [*HERE.glob("*.yaml"), *(HERE / "valid").glob("*.yaml")]:
        old.unlink()
    for name, text in CASES.items():
        data = text.encode() if isinstance(text, str) else text
        (HERE / f"{name}.yaml").write_bytes(data)
    (HERE / "valid").mkdir(exist_ok=True)
    for name, text in VALID.items():
        # one connector name per case: they all apply to the same emulator
        (HERE / "valid" / f"{name}.yaml").write_text(text.replace("  good-one:\n", f"  {name}:\n"))
    print(f"{len(CASES)} invalid cases, {len(VALID)} valid hostile cases")


if __name__ == "__main__":
    main()
