#!/usr/bin/env python3
"""tests/kvm/stalled-output.py SMOLVM BUILD: issue 18's finding 1. The guest writes to the
UART forever; smolvm's stdout is a pipe nobody reads and its stdin a terminal on which one
key is typed. SIGTERM must still end smolvm (status 143) within seconds, the terminal must be
back in the mode it had, and the guest's output must have reached the pipe in order."""
import fcntl
import os
import pty
import signal
import subprocess
import sys
import termios
import time

smolvm, build = sys.argv[1], sys.argv[2]


def fail(msg, err=b""):
    print("FAIL: " + msg)
    sys.stdout.write(err.decode(errors="replace")[-4000:])
    sys.exit(1)


master, slave = pty.openpty()
before = termios.tcgetattr(slave)
rfd, wfd = os.pipe()  # stdout: nobody reads until the end
fcntl.fcntl(wfd, 1031, 4096)  # F_SETPIPE_SZ: full after 4 KiB (a nested guest is slow)
errpath = "/dev/shm/stalled-output.%d.err" % os.getpid()
with open(errpath, "wb") as err:
    p = subprocess.Popen([smolvm, "-v", "run", "--set", "boot.kernel=%s/guest/hello" % build,
                          "--set", "boot.cmdline=hello.flood", "configs/hello.ini"],
                         stdin=slave, stdout=wfd, stderr=err)
os.close(wfd)
# the pipe and smolvm's 4 KiB buffer fill, then the guest's next bytes are dropped (it does
# not wait for THRE): a few KB/s in the nest, slower under load
deadline = time.monotonic() + 120
while b"transmitter is busy" not in open(errpath, "rb").read():
    if p.poll() is not None:
        fail("smolvm ended early with %d" % p.returncode, open(errpath, "rb").read())
    if time.monotonic() > deadline:
        p.kill()
        fail("the output never filled up in 120 s", open(errpath, "rb").read())
    time.sleep(0.2)
os.write(master, b"k")  # a key: the event loop delivers it to the UART
time.sleep(1)
p.send_signal(signal.SIGTERM)
t0 = time.monotonic()
try:
    status = p.wait(timeout=15)
except subprocess.TimeoutExpired:
    p.kill()
    p.wait()
    fail("smolvm still ran 15 s after SIGTERM with its stdout stalled", open(errpath, "rb").read())
took = time.monotonic() - t0
err = open(errpath, "rb").read()
os.unlink(errpath)
if status != 143:
    fail("smolvm exited %d after SIGTERM, wanted 143" % status, err)
after = termios.tcgetattr(slave)
if after != before:
    fail("the terminal was left in another mode: %r, was %r" % (after, before), err)
os.set_blocking(rfd, False)
data = b""
try:
    while True:
        chunk = os.read(rfd, 1 << 16)
        if not chunk:
            break
        data += chunk
except BlockingIOError:
    pass
head = data.split(b"hello: done\r\n", 1)
if len(head) != 2 or not head[1].startswith(b"A" * 1000) or head[1].strip(b"A"):
    fail("the pipe holds %d bytes, not the banner then A's: %r" % (len(data), data[-200:]), err)
print("ok: SIGTERM served in %.2f s with stdout stalled; %d bytes reached the pipe in order;"
      " the terminal was restored" % (took, len(data)))
if b"bytes the guest sent were dropped" not in err:
    fail("smolvm did not count what it dropped", err)
