# Writes salt_acl_cases.json: Salt 3007.8's own answers (auth_check, spec_check, fill_auth_list,
# sum_permissions + sorted_permissions) for the cases acl/tests.rs replays. Run it with the
# 3007.8 venv's python (tests/salt-env.sh): python salt_acl_cases.py > salt_acl_cases.json
import json, salt.utils.minions as m, salt.netapi as n
opts = {"permissive_acl": False}
ck = m.CkMinions.__new__(m.CkMinions); ck.opts = opts
# target validation: allowed targets table
ALLOWED = {"web*": True, "db*": False, "G@os:Debian": True}
ck.validate_tgt = lambda valid, tgt, tgt_type, minions=None: ALLOWED.get(valid, False)
cases = []
lists = {
  "plain": ["test.*", "grains.items"],
  "dicts": [{"web*": ["pkg.*", {"cmd.run": {"args": ["ls.*", None], "kwargs": {"cwd": "/tmp"}}}]}, {"db*": ["cmd.*"]}],
  "special": ["@runner", {"@wheel": ["key.list.*"]}, {"@jobs": ["list_job$"]}],
  "module": ["@manage", {"@runner": ["cache\\..*"]}],
  "bad": ["(", 5, {"a": 1, "b": 2}, "test.ping"],
  "alt": ["test.ping|cmd.run"],
}
funs = ["test.ping", "test", "testx.ping", "grains.items_x", "pkg.install", "cmd.run", "cmd.script", "sys.doc", "cmd.runall"]
argsets = [[], ["ls -l"], ["ls", "x"], ["ls", "x", {"__kwarg__": True, "cwd": "/tmp"}], ["ls", 5, {"__kwarg__": True, "cwd": "/tmpx"}]]
for name, lst in lists.items():
    for fun in funs:
        for a in argsets:
            r = ck.auth_check(lst, fun, a, "t")
            cases.append(("local", name, fun, a, bool(r)))
sfuns = ["manage.up", "cache.grains", "jobs.list_job", "jobs.list_jobs", "key.list_all", "key.accept", "manage", "a.b.c"]
for name, lst in lists.items():
    for form in ["runner", "wheel"]:
        for fun in sfuns:
            r = ck.spec_check(lst, fun, {}, form)
            cases.append(("spec-"+form, name, fun, [], r is True))
# fill_auth_list and perms
eauth = {"fred": ["test.*"], "f.*": ["@runner"], "*": ["grains.*"], "admins%": ["@wheel", {"*": ["cmd.run"]}], "ops%%": ["sys.*"], "^filename": "/x"}
fill = {}
def perms(user, groups):
    try:
        return n.sorted_permissions(n.sum_permissions({"name": user, "groups": groups}, json.loads(json.dumps(eauth)))) or {}
    except Exception:
        return {}
for user, groups in [("fred", []), ("frank", ["admins"]), ("bob", []), ("bob", ["ops", "admins"]), ("filename", [])]:
    fill[user + "/" + ",".join(groups)] = {
        "auth_list": ck.fill_auth_list(json.loads(json.dumps(eauth)), user, groups),
        "permissive": ck.fill_auth_list(json.loads(json.dumps(eauth)), user, groups, permissive=True),
        "perms": perms(user, groups),
    }
print(json.dumps({"lists": lists, "cases": cases, "eauth": eauth, "fill": fill}))
