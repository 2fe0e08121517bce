#!/usr/bin/env python3
"""Fire / listen on a Salt event bus with Salt's own event library.

Run with the python of a Salt venv (tests/salt-env.sh), e.g.
  $VENV/bin/python tests/salt_event_tool.py fire --node master --sock-dir D my/tag '{"a": 1}'
  $VENV/bin/python tests/salt_event_tool.py listen --node minion --sock-dir D --id minion1 --count 2 --timeout 10

fire    TAG JSON_DATA     SaltEvent.fire_event(data, tag); exit 0 if it returned True, else 1.
listen                    one JSON line {"tag": ..., "data": ...} per event on stdout (flushed;
                          non-JSON values via repr); "READY" on stderr once subscribed.
                          Exit 0 after --count events, 2 on --timeout (--count 0: run until
                          the timeout, then exit 0).
Common options: --node master|minion, --sock-dir D, --id ID (minion; selects the socket
hash, default minion1), --opt KEY=JSON (extra opts, e.g. hash_type="md5",
ipc_mode="tcp", tcp_pub_port=4510).

Opts: Salt's SaltEvent starts from DEFAULT_{MASTER,MINION}_OPTS and updates them with
ours, so only sock_dir (and id for a minion) are needed on 3006.30/3007.8/3007.17.
No config file is read.
"""
import argparse
import json
import os
import sys
import time


def make_event(args, listen):
    import salt.utils.event

    opts = {"sock_dir": args.sock_dir}
    if args.node == "minion":
        opts["id"] = args.id
    for item in args.opt:
        k, _, v = item.partition("=")
        try:
            opts[k] = json.loads(v)
        except ValueError:
            opts[k] = v
    return salt.utils.event.get_event(args.node, sock_dir=args.sock_dir, opts=opts,
                                      listen=listen)


def cmd_fire(args):
    try:
        data = json.loads(args.data)
    except ValueError as exc:
        print(f"bad JSON_DATA: {exc}", file=sys.stderr)
        return 1
    ev = make_event(args, listen=False)
    try:
        ok = ev.fire_event(data, args.tag)
    except Exception as exc:  # ValueError for empty tag / non-dict data, etc.
        print(f"fire_event failed: {exc!r}", file=sys.stderr)
        ok = False
    finally:
        ev.destroy()
    return 0 if ok is True else 1


def _pub_connected(ev):
    """connect_pub() reports success on 3007.x even when nothing is listening
    (tcp.PublishClient gives up with _stream None); look at the real stream."""
    if not ev.cpub:
        return False
    obj = getattr(ev.subscriber, "obj", ev.subscriber)   # SyncWrapper -> client
    if hasattr(obj, "_stream"):                          # 3007: transport.tcp.PublishClient
        return obj._stream is not None and not obj._stream.closed()
    if callable(getattr(obj, "connected", None)):        # 3006: transport.ipc subscriber
        return obj.connected()
    return True


def cmd_listen(args):
    deadline = time.monotonic() + args.timeout
    ev = make_event(args, listen=False)
    # connect_pub() with no timeout may retry forever; bound it by our deadline.
    while True:
        ev.connect_pub(timeout=max(0.1, min(1.0, deadline - time.monotonic())))
        if _pub_connected(ev):
            break
        ev.close_pub()
        if time.monotonic() >= deadline:
            print("TIMEOUT (not connected)", file=sys.stderr)
            return 2
        time.sleep(0.1)
    if args.sync:
        # Prove the publisher has registered us: fire a marker and wait for it.
        marker = f"salt_event_tool/ready/{os.getpid()}"
        pusher = make_event(args, listen=False)
        got = False
        while not got and time.monotonic() < deadline:
            pusher.fire_event({}, marker)
            end = min(deadline, time.monotonic() + 0.5)
            while time.monotonic() < end:
                e = ev.get_event(wait=max(0.01, end - time.monotonic()), full=True)
                if e and e["tag"] == marker:
                    got = True
                    break
        pusher.destroy()
        if not got:
            print("TIMEOUT (sync marker never seen)", file=sys.stderr)
            return 2
    print("READY", file=sys.stderr, flush=True)
    n = 0
    while args.count == 0 or n < args.count:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        # One long wait: Salt's sync get_event re-connects after each `wait` expiry,
        # which can lose events, so never use short waits.
        e = ev.get_event(wait=remaining, tag=args.tag, full=True, auto_reconnect=True)
        if e is None:
            continue
        if args.sync and e["tag"].startswith("salt_event_tool/ready/"):
            continue
        sys.stdout.write(json.dumps({"tag": e["tag"], "data": e["data"]}, default=repr) + "\n")
        sys.stdout.flush()
        n += 1
    ev.destroy()
    if args.count and n < args.count:
        print(f"TIMEOUT after {n} event(s)", file=sys.stderr)
        return 2
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p):
        p.add_argument("--node", choices=("master", "minion"), required=True)
        p.add_argument("--sock-dir", required=True)
        p.add_argument("--id", default="minion1")
        p.add_argument("--opt", action="append", default=[], metavar="KEY=JSON")

    p = sub.add_parser("fire")
    common(p)
    p.add_argument("tag")
    p.add_argument("data", nargs="?", default="{}", metavar="JSON_DATA")
    p = sub.add_parser("listen")
    common(p)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--tag", default="", help="tag prefix filter (Salt startswith match)")
    p.add_argument("--sync", action="store_true",
                   help="before READY, fire salt_event_tool/ready/<pid> and wait until it "
                        "comes back (guarantees the subscription is live); not printed")
    args = ap.parse_args(argv)
    return cmd_fire(args) if args.cmd == "fire" else cmd_listen(args)


if __name__ == "__main__":
    sys.exit(main())
