#!/usr/bin/env python3
"""tests/kvm/ctl-test.py CASE SMOLVM BUILD: the control plane against a running guest (issue 20).

  sensor  configs/sensor.ini with plugins/example-sensor (built in the tree) and the guest kit's
          sensor-demo. Every method of the sensor (one of each signature letter) is called
          through `smolvm ctl SOCK call`, and the guest reports what it saw in its interrupt
          handler: a fault, then an alarm with every register. Bad arguments, garbage, a line
          of a megabyte and a client that leaves mid-request get errors while the guest runs
          on (its second interrupt comes after them).
  stats   the guest kit's stats-probe makes N port writes to the boot-timer and M reads and a
          write on a virtio-blk disk; `smolvm ctl SOCK stats --json` counts exactly those.
Run from the source root."""
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time

case, smolvm, build = sys.argv[1], sys.argv[2], sys.argv[3]
tmp = tempfile.mkdtemp(prefix="smolvm-ctl.", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
sock = os.path.join(tmp, "m.sock")
errpath = os.path.join(tmp, "err")
proc = None
out = b""


def fail(msg):
    print("FAIL: " + msg)
    print("--- guest output")
    sys.stdout.write(out.decode(errors="replace")[-6000:])
    print("--- smolvm stderr")
    try:
        sys.stdout.write(open(errpath, errors="replace").read()[-6000:])
    except OSError:
        pass
    if proc and proc.poll() is None:
        proc.kill()
    shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1)


def start(args, stdin=subprocess.DEVNULL):
    global proc
    with open(errpath, "wb") as err:
        proc = subprocess.Popen([smolvm, "-v", "run", "--control", sock] + args, stdin=stdin,
                                stdout=subprocess.PIPE, stderr=err)
    os.set_blocking(proc.stdout.fileno(), False)


def wait_for(text, seconds=120):
    """Reads the guest's output until @text appears."""
    global out
    deadline = time.monotonic() + seconds
    while text.encode() not in out:
        if time.monotonic() > deadline:
            fail("no '%s' in %d s" % (text, seconds))
        r, _, _ = select.select([proc.stdout], [], [], 1)
        if r:
            chunk = proc.stdout.read()
            if chunk:
                out += chunk
            elif proc.poll() is not None:
                fail("smolvm ended (%s) before '%s'" % (proc.returncode, text))


def ctl(*args, status=0):
    r = subprocess.run([smolvm, "ctl", sock] + list(args), capture_output=True, timeout=60)
    if r.returncode != status:
        fail("ctl %s exited %d, wanted %d: %s%s" % (" ".join(args), r.returncode, status,
                                                    r.stdout.decode(), r.stderr.decode()))
    return r.stdout.decode() if status == 0 else r.stderr.decode()


def call(target, *args):
    return ctl("call", target, *args).rstrip("\n")


def refused(what, *args):
    msg = ctl("call", *args, status=1)
    if what not in msg:
        fail("ctl call %s: '%s' lacks '%s'" % (" ".join(args), msg.strip(), what))


def raw_exchange(data, read=True):
    """Sends raw bytes on a fresh connection and returns the reply line."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(sock)
    try:
        s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the machine answered and closed before taking all of it (an overlong line)
    reply = b""
    while read and not reply.endswith(b"\n"):
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        reply += chunk
    s.close()
    return reply


def finish(status):
    global out
    try:
        rest, _ = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        fail("smolvm did not end")
    out += rest or b""
    if proc.returncode != status:
        fail("smolvm exited %d, wanted %d" % (proc.returncode, status))


def sensor():
    env_path = os.path.join(build, "tests", "unit")
    if not os.path.exists(os.path.join(env_path, "example-sensor.so")):
        fail("%s/example-sensor.so is not built" % env_path)
    os.environ["SMOLVM_PLUGIN_PATH"] = env_path
    start(["--set", "boot.kernel=%s/guest/sensor-demo" % build, "configs/sensor.ini"])
    wait_for("sensor-demo: ready for a fault")

    methods = ctl("methods")
    for m, sig in [("set_temperature", "i(d)"), ("get_temperature", "d()"),
                   ("set_threshold", "i(d)"), ("get_threshold", "d()"),
                   ("set_hysteresis", "i(h)"), ("set_offset", "v(b)"),
                   ("inject_fault", "v(B)"), ("set_rate", "i(H)"), ("set_serial", "v(L)"),
                   ("adjust", "l(l)"), ("alarms", "u()"), ("set_model", "i(s)"),
                   ("describe", "v(S)")]:
        line = [ln for ln in methods.splitlines() if ("sensor.%s " % m) in ln]
        if len(line) != 1 or sig not in line[0]:
            fail("ctl methods lacks sensor.%s %s:\n%s" % (m, sig, methods))
    devices = ctl("devices")
    if "sensor           example-sensor   0x" not in devices or " [10] 13" not in devices:
        fail("ctl devices:\n" + devices)

    # B: a fault; the guest's handler sees STATUS.FAULT, FAULT = 7 and an invalid reading
    if call("sensor.inject_fault", "7") != "":
        fail("a void method printed something")
    wait_for("sensor-demo: interrupt 1: status 0x2 fault 7 temp 0x80000000")
    wait_for("sensor-demo: ready for an alarm")
    call("sensor.inject_fault", "0")

    # refused before any call: the guest runs on (its second interrupt comes later)
    refused("argument 1 (H): '70000'", "sensor.set_rate", "70000")
    refused("argument 1 (b): '-129'", "sensor.set_offset", "-129")
    refused("argument 1 (d): 'warm'", "sensor.set_temperature", "warm")
    refused("takes 1 argument, 0 given", "sensor.adjust")
    refused("takes 0 arguments, 1 given", "sensor.alarms", "1")
    refused("no method \"reboot\"", "sensor.reboot")
    refused("no device named \"oven\"", "oven.alarms")
    # garbage, a megabyte line, a client that leaves mid-request: errors, the machine goes on
    r = raw_exchange(b"\x00\xff{{{ not json\n")
    if b"malformed request" not in r:
        fail("garbage got %r" % r)
    r = raw_exchange(b'{"cmd":"call","device":"sensor","method":"alarms","args":[' +
                     b'"1",' * 9 + b'"1"]}\n')
    if b"at most 8" not in r:
        fail("ten arguments got %r" % r)
    r = raw_exchange(b"x" * (1 << 20) + b"\n")
    if b"longer than 65536 bytes" not in r:
        fail("a megabyte line got %r" % r[:200])
    raw_exchange(b'{"cmd":"call","device":"sensor","meth', read=False)
    status = json.loads(ctl("status", "--json"))
    if status.get("state") != "running":
        fail("status after the garbage: %s" % status)

    # every other letter, with the guest's view checked after the alarm
    checks = [(("sensor.set_threshold", "40"), "0"),      # d in, i out
              (("sensor.get_threshold",), "40"),          # d out
              (("sensor.set_hysteresis", "1500"), "0"),   # h
              (("sensor.set_hysteresis", "-1"), str(-22)),  # the method's own -EINVAL
              (("sensor.set_offset", "-5"), ""),          # b, v
              (("sensor.set_rate", "50"), "0"),           # H
              (("sensor.set_serial", "0x0123456789abcdef"), ""),  # L
              (("sensor.set_model", "smol-therm pro"), "0"),  # s
              (("sensor.set_temperature", "30"), "0"),
              (("sensor.get_temperature",), "30"),
              (("sensor.alarms",), "0")]                  # u
    for args, want in checks:
        got = call(*args)
        if got != want:
            fail("ctl call %s printed '%s', wanted '%s'" % (" ".join(args), got, want))
    desc = call("sensor.describe")                        # S
    want = ("smol-therm pro #0123456789abcdef: 29.500 C (offset -0.5), threshold 40.000 C, "
            "hysteresis 1500 mC, 50 Hz, fault 0, status 0x0, ctrl 0x1, alarms 0")
    if desc != want:
        fail("describe printed '%s', wanted '%s'" % (desc, want))
    stats = json.loads(ctl("stats", "--json"))
    dev = [d for d in stats["devices"] if d["name"] == "sensor"][0]
    if dev["counters"]["faults"] != 1 or dev["counters"]["irqs_raised"] != 1:
        fail("sensor counters: %s" % dev)
    if dev["mmio_reads"] < 14 or dev["mmio_writes"] < 2:
        fail("sensor accesses: %s" % dev)
    # l: 12.5 degrees more: 42.500, read 42.000 with the offset: above 40, the alarm
    if call("sensor.adjust", "12500") != "42500":
        fail("adjust did not return 42500")
    wait_for("sensor-demo: interrupt 2: status 0x1 temp 42000 threshold 40000 hysteresis 1500 "
             "offset -5 fault 0 rate 50 serial 0x0123456789abcdef alarms 1 "
             "model 'smol-therm pro'")
    wait_for("line low after the handler: status 0x0, 2 interrupts")
    finish(0)


def stats():
    writes, reads = 777, 33
    img = os.path.join(tmp, "d.img")
    with open(img, "wb") as f:
        f.truncate(1 << 20)
    ini = os.path.join(tmp, "m.ini")
    with open(ini, "w") as f:
        f.write("""[machine]
memory = 64M
acpi = off
[boot]
kernel = %s/guest/stats-probe
cmdline = console=ttyS0 writes=%d reads=%d
[device com1]
type = uart-16550
input = stdin
[device exit]
type = debug-exit
[device timer]
type = boot-timer
[device disk]
type = virtio-blk
path = %s
""" % (os.path.abspath(build), writes, reads, img))
    start([ini], stdin=subprocess.PIPE)
    wait_for("stats-probe: done")
    s = json.loads(ctl("stats", "--json"))
    dev = {d["name"]: d for d in s["devices"]}
    t, d = dev["timer"], dev["disk"]
    if t["pio_writes"] != writes or t["pio_reads"] != 0:
        fail("boot-timer: %d port writes counted, the guest made %d: %s" %
             (t["pio_writes"], writes, t))
    c = d["counters"]
    want = {"q0.requests": reads + 1, "reads": reads, "writes": 1, "read_bytes": reads * 4096,
            "write_bytes": 4096, "errors": 0, "q0.malformed": 0}
    for k, v in want.items():
        if c.get(k) != v:
            fail("disk %s = %s, the guest did %d: %s" % (k, c.get(k), v, c))
    # one QueueNotify per request (the kit's driver kicks each), by exit or ioeventfd
    if c["q0.notifications"] != reads + 1:
        fail("disk notifications %d, wanted %d: %s" % (c["q0.notifications"], reads + 1, c))
    if c["q0.interrupts"] + c["q0.suppressed"] < 1:
        fail("no interrupt decision counted: %s" % c)
    # one request in latency_us.one_in is timed: the 1st, the 17th, ...
    timed = (reads + 1 + c["latency_us.one_in"] - 1) // c["latency_us.one_in"]
    if sum(v for k, v in c.items() if k.startswith("latency_us.under_") or
           k.startswith("latency_us.over_")) != timed:
        fail("latency buckets do not sum to the %d timed requests: %s" % (timed, c))
    vcpu = s["vcpus"][0]["exits"]
    if vcpu.get("pio", 0) < writes or vcpu["total"] < vcpu.get("pio", 0):
        fail("vCPU 0 exits: %s" % vcpu)
    # the people's view of the same
    text = ctl("stats")
    if "timer        boot-timer     mmio r/w 0/0  pio r/w 0/%d" % writes not in text:
        fail("ctl stats:\n" + text)
    top = subprocess.run([smolvm, "top", sock, "--count", "2", "--interval", "200"],
                         capture_output=True, timeout=60)
    if top.returncode != 0 or top.stdout.decode().count("smolvm top ") != 2:
        fail("smolvm top: %d %s %s" % (top.returncode, top.stdout.decode(), top.stderr.decode()))
    proc.stdin.write(b"x")
    proc.stdin.flush()
    wait_for("stats-probe: got 'x', bye")
    finish(0)


{"sensor": sensor, "stats": stats}[case]()
shutil.rmtree(tmp, ignore_errors=True)
print("ok: " + case)
