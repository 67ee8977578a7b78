#!/usr/bin/env python3
"""Removes each security check of the helpers, one at a time, in a scratch copy of the repository, and
runs the test suite: every mutation must make at least one test fail. Run as root (the privileged tests
need it). Usage: scripts/check-mutations.py [NAME-SUBSTRING]. Takes ~10 minutes."""
import os, shutil, signal, subprocess, sys, tempfile

# (name, file, text to find, replacement)
MUTATIONS = [
    ("argument count", "helpers/src/newidmap.rs",
     "if args.len() >= 4 && (args.len() - 1).is_multiple_of(3) {", "if args.len() >= 4 {"),
    ("pid >= 1", "helpers/src/target.rs",
     "Some(pid) if pid >= 1 => Ok(TargetSpec::Pid(pid)),", "Some(pid) => Ok(TargetSpec::Pid(pid)),"),
    ("fd:N must be a /proc pid dir", "helpers/src/target.rs",
     "    is_dir\n        && on_procfs", "    true || is_dir && on_procfs"),
    ("fd:N pidfd detection", "helpers/src/target.rs",
     "(pid >= 1).then_some(pid)", "None::<i32>.or(None)"),
    ("ownership: target uid", "helpers/src/newidmap.rs",
     "|| owner.uid != caller.uid ||", "||"),
    ("ownership: target gid", "helpers/src/newidmap.rs",
     "|| owner.gid != caller.gid {", "{"),
    ("ownership: primary gid", "helpers/src/newidmap.rs",
     "if caller.gid != caller.passwd_gid ||", "if"),
    ("caller has a passwd entry", "helpers/src/newidmap.rs",
     "name: user.name,", "name: String::from(\"root\"),"),
    ("count >= 1", "helpers/src/idmap.rs", "if m.count == 0 {", "if false {"),
    ("no id overflow", "helpers/src/idmap.rs",
     "if m.inside_interval().end > limit || m.outside_interval().end > limit {", "if false {"),
    ("no overlaps", "helpers/src/idmap.rs",
     "    for (i, a) in mappings.iter().enumerate() {", "    for (i, a) in mappings.iter().enumerate().take(0) {"),
    ("at most 340 lines", "helpers/src/idmap.rs", "if lines > MAX_MAP_LINES {", "if false {"),
    ("numbers fit u32", "helpers/src/idmap.rs",
     ".and_then(|v| u32::try_from(v).ok())", ".map(|v| v as u32)"),
    ("coverage required", "helpers/src/newidmap.rs", "    if granted {\n        return Ok(());",
     "    if true || granted {\n        return Ok(());"),
    ("own id only with count 1", "helpers/src/newidmap.rs",
     "let is_own_id = |m: &IdMapping| m.count == 1 && m.outside == own_id;",
     "let is_own_id = |m: &IdMapping| m.outside == own_id;"),
    ("own id rule exists", "helpers/src/newidmap.rs",
     "let is_own_id = |m: &IdMapping| m.count == 1 && m.outside == own_id;",
     "let is_own_id = |m: &IdMapping| m.count == 1 && m.outside == own_id && false;"),
    ("entries of the caller only", "helpers/src/subid.rs",
     "Some(entry) if owner.owns(entry.owner) => visit(entry),",
     "Some(entry) => visit(entry),"),
    ("count-0 entries grant nothing", "helpers/src/subid.rs",
     "    if entry.range.is_empty() {\n        ControlFlow::Continue(())\n    } else {",
     "    if false {\n        ControlFlow::Continue(())\n    } else {"),
    ("line length limit", "helpers/src/subid.rs",
     "    if line.len() >= MAX_LINE_LEN {\n        return None;", "    if false {\n        return None;"),
    ("exactly three fields", "helpers/src/subid.rs",
     "if fields.next().is_some() || !is_valid_owner(owner) {", "if !is_valid_owner(owner) {"),
    ("no symlinked subid file", "helpers/src/subid.rs",
     ".custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)",
     ".custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)"),
    ("trusted subid file", "helpers/src/subid.rs",
     "    if uid != 0 || mode & 0o022 != 0 {", "    if false {"),
    ("setgroups deny", "helpers/src/newidmap.rs",
     "if kind == IdKind::Gid && !grant.setgroups_allowed {", "if false {"),
    ("switch to the caller", "helpers/src/newidmap.rs",
     "    privilege::switch_to_caller_keeping(\n        caller.uid,\n        caller.gid,\n        capabilities_needed(kind, &mappings),\n    )\n    .map_err(|e| format!(\"could not drop privileges: {e}\"))?;",
     "    let _ = capabilities_needed;"),
    ("narrow before parsing", "helpers/src/newidmap.rs",
     "    if let Err(e) = privilege::narrow_to_caller(capabilities_the_run_may_need(kind)) {",
     "    if let Err(e) = Ok::<(), String>(()) {"),
    ("narrowing keeps only what the write may need", "helpers/src/privilege.rs",
     "    let kept = may_need & current.permitted;", "    let kept = current.permitted;"),
    ("filesystem uid becomes the caller's", "helpers/src/privilege.rs",
     "    setfsuid(uid);\n    verify_filesystem_ids", "    verify_filesystem_ids"),
    ("least capability", "helpers/src/privilege.rs",
     "    let keep = keep & current.permitted;", "    let keep = current.permitted;"),
    ("drop privilege in other applets", "src/applets.rs",
     "            if let Err(e) = privilege::drop_all_privilege() {", "            if let Err(e) = Ok::<(), String>(()) {"),
    ("only real root keeps its capabilities", "helpers/src/privilege.rs",
     "    real_uid.is_root() && securebits & SECBIT_NOROOT == 0", "    real_uid.is_root()"),
    ("exact basename", "src/applets.rs",
     "APPLETS.iter().find(|a| a.name.as_bytes() == name)",
     "APPLETS.iter().find(|a| name.ends_with(a.name.as_bytes()))"),
    ("closed standard fds opened", "helpers/src/privilege.rs",
     "pub fn drop_all_privilege() -> Result<(), PrivilegeError> {\n    ensure_standard_fds_open()?;",
     "pub fn drop_all_privilege() -> Result<(), PrivilegeError> {"),
    ("no core dumps", "helpers/src/privilege.rs",
     "    setrlimit(Resource::RLIMIT_CORE, 0, 0)", "    Ok::<(), nix::Error>(())"),
    ("caller's file size limit raised", "helpers/src/privilege.rs",
     "    setrlimit(Resource::RLIMIT_FSIZE, hard, hard)", "    Ok::<(), nix::Error>(()).map(|_| hard)"),
    ("audit trail", "helpers/src/newidmap.rs",
     "            audit::send(socket, program, &record, Decision::Granted);", ""),
]

def main():
    # Started with nohup or in the background, this process ignores SIGHUP/SIGINT/SIGQUIT, and the
    # tests would inherit that; they expect an ordinary caller.
    for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)
    only = sys.argv[1] if len(sys.argv) > 1 else ""
    repo = subprocess.check_output(["git", "rev-parse", "--show-toplevel"], text=True).strip()
    work = tempfile.mkdtemp(prefix="unshare-run-mutations.")
    target = os.path.join(work, "target")
    src = os.path.join(work, "src")
    subprocess.check_call(["git", "clone", "-q", repo, src])
    # Test the working tree as it is, committed or not.
    for f in subprocess.check_output(["git", "ls-files"], cwd=repo, text=True).split():
        os.makedirs(os.path.dirname(os.path.join(src, f)) or ".", exist_ok=True)
        shutil.copy2(os.path.join(repo, f), os.path.join(src, f))
    env = dict(os.environ, CARGO_TARGET_DIR=target)
    # As tests/run: the privileged tests are #[ignore]d for a plain `cargo test`; here they all run.
    test_command = ["cargo", "test", "--workspace", "--no-fail-fast", "--", "--include-ignored"]
    survivors = []
    try:
        subprocess.check_call(["cargo", "test", "--workspace", "--no-run", "-q"], cwd=src, env=env)
        base = subprocess.run(test_command, cwd=src, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if base.returncode != 0:
            print("BASELINE FAILED: the unmutated tree must pass first", flush=True)
            print(base.stdout[-6000:], flush=True)
            sys.exit(2)
        print("baseline passes", flush=True)
        for name, path, old, new in MUTATIONS:
            if only not in name:
                continue
            full = os.path.join(src, path)
            original = open(full).read()
            if original.count(old) != 1:
                print(f"STALE   {name}: pattern found {original.count(old)} times in {path}", flush=True)
                survivors.append(name)
                continue
            open(full, "w").write(original.replace(old, new))
            try:
                r = subprocess.run(test_command, cwd=src, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            finally:
                open(full, "w").write(original)
            failed = [l.split()[1] for l in r.stdout.splitlines() if l.startswith("test ") and l.endswith("FAILED")]
            if r.returncode == 0:
                print(f"SURVIVED {name}", flush=True)
                survivors.append(name)
            elif not failed:
                # Not a catch: the mutated code did not build (or the run broke); the mutation is invalid.
                print(f"INVALID {name}: no test failed, cargo exited {r.returncode}", flush=True)
                print("\n".join(r.stdout.splitlines()[-15:]), flush=True)
                survivors.append(name)
            else:
                print(f"caught  {name}: {', '.join(failed[:4])}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{len(survivors)} mutation(s) survived" + (": " + ", ".join(survivors) if survivors else ""))
    sys.exit(1 if survivors else 0)

if __name__ == "__main__":
    main()
