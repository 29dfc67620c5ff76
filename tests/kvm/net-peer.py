#!/usr/bin/env python3
"""The host end of guest/net-hostile: net-peer.py SOCKET GUEST_MAC MTU SMOLVM_PID

Connects to smolvm's virtio-net socket (backend = socket, listen = on: frames each preceded by
its 4-byte big-endian length), checks every frame the guest's device sends, and answers:

  E (echo request)   a reply R: addresses swapped, same seq, length and tag, the pattern
                     bytes inverted (x ^ 0xff)
  S (split request)  a 200-byte reply P sent in two writes 1.5 s apart (the first one the
                     length prefix and 100 bytes): the payload resets the device in between
  H (hostile frame)  a frame the payload built hostile but that the device may legitimately
                     send (an indirect table longer than the queue): counted, no reply
  D (done)           the payload's status and how many E and S frames it sent: compared with
                     what arrived; the verdict goes back in a V frame
  X                  a frame the payload built for a chain the device must refuse: its
                     arrival is a failure

A frame is well-formed when it is 60 to MTU + 18 bytes long, addressed to us from the guest's
MAC with ethertype 0x88b5 and the magic, carries its own length and a sequence number after
the previous frame's (nothing repeated or reordered), and holds the pattern its seq defines:
anything else was not built by the payload (bytes from outside its buffers, a chain cut or
glued wrong) and fails the run. So does a stream out of sync, a missing done frame, a count
that differs from the payload's, a peer that is not smolvm (SO_PEERCRED), or smolvm no longer
running when the done frame came. Prints "net-peer: PASS" or "net-peer: FAIL" last; exits 0
or 1.
"""
import os
import socket
import struct
import sys
import time

PEER_MAC = bytes.fromhex("026e68000001")
ETHERTYPE = b"\x88\xb5"
MAGIC = b"NHOSTILE"
HDR = 48  # dst src type magic op mode seq(4) len(4) tag(16): the pattern starts here
MIN_FRAME = 60
SPLIT_LEN, SPLIT_AT = 200, 100
SPLIT_PAUSE = 1.5
DEADLINE = 200  # seconds for the whole run


def log(msg):
    print("net-peer: " + msg, flush=True)


def pattern(seq, start, end):
    return bytes((seq * 31 + i * 7 + (i >> 8)) & 0xFF for i in range(start, end))


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except OSError:
        return False


class Peer:
    def __init__(self, sock, guest_mac, mtu, pid):
        self.s = sock
        self.mac = guest_mac
        self.mtu = mtu
        self.pid = pid
        self.bad = []
        self.frames = 0
        self.good = 0  # E and S frames
        self.hostile = 0  # H frames
        self.last_seq = 0
        self.last_tag = "(start)"
        self.done = False
        self.verdict_sent = False

    def fail(self, why):
        self.bad.append(why)
        log("BAD " + why)

    def reply(self, frame, op, body):
        out = self.mac + PEER_MAC + frame[12:22] + op + frame[23:HDR] + body
        self.s.sendall(struct.pack(">I", len(out)) + out)

    def check(self, f):
        """Why frame f is not one the payload built, or None."""
        n = len(f)
        if n < MIN_FRAME:
            return f"{n} bytes: shorter than any frame the payload sends ({MIN_FRAME})"
        if n > self.mtu + 18:
            return f"{n} bytes: longer than the MTU allows ({self.mtu} + 18)"
        if f[0:6] != PEER_MAC or f[6:12] != self.mac or f[12:14] != ETHERTYPE:
            return f"addresses or ethertype {f[0:14].hex()} are not the payload's"
        if f[14:22] != MAGIC:
            return f"no magic (bytes 14..21: {f[14:22].hex()})"
        op = f[22:23]
        seq, flen = struct.unpack(">II", f[24:32])
        tag = f[32:48].rstrip(b"\0").decode("ascii", "replace")
        if op == b"X":
            return f"a frame of case {tag} (seq {seq}) that the device had to refuse"
        if op not in (b"E", b"S", b"H", b"D"):
            return f"unknown op {op!r}"
        if flen != n:
            return f"length field {flen}, frame {n} bytes: cut or glued"
        if seq <= self.last_seq:
            return f"seq {seq} does not follow {self.last_seq}: repeated or reordered"
        if op != b"D" and f[HDR:] != pattern(seq, HDR, n):
            bad = next(i for i in range(HDR, n) if f[i] != pattern(seq, i, i + 1)[0])
            return f"seq {seq} ({tag}): byte {bad} is 0x{f[bad]:02x}, not the pattern's"
        return None

    def frame(self, f):
        self.frames += 1
        why = self.check(f)
        if why:
            self.fail(f"frame {self.frames} ({len(f)} bytes, after seq {self.last_seq} of "
                      f"{self.last_tag}): {why}")
            return
        if self.done:
            self.fail(f"frame {self.frames} came after the done frame")
            return
        op = f[22:23]
        seq = struct.unpack(">I", f[24:28])[0]
        self.last_seq = seq
        self.last_tag = f[32:48].rstrip(b"\0").decode("ascii", "replace")
        if op == b"E":
            self.good += 1
            self.reply(f, b"R", bytes(b ^ 0xFF for b in f[HDR:]))
        elif op == b"S":
            self.good += 1
            body = bytearray(b ^ 0xFF for b in pattern(seq, HDR, SPLIT_LEN))
            # read from byte SPLIT_AT on, the rest would be one frame of its own
            body[SPLIT_AT - HDR:SPLIT_AT - HDR + 4] = struct.pack(">I", SPLIT_LEN - SPLIT_AT - 4)
            out = self.mac + PEER_MAC + f[12:22] + b"P" + f[23:28] + \
                struct.pack(">I", SPLIT_LEN) + f[32:HDR] + bytes(body)
            data = struct.pack(">I", len(out)) + out
            self.s.sendall(data[:4 + SPLIT_AT])
            time.sleep(SPLIT_PAUSE)
            self.s.sendall(data[4 + SPLIT_AT:])
        elif op == b"H":
            self.hostile += 1
            log(f"note: the device sent the hostile-but-legal frame of {self.last_tag} "
                f"(seq {seq})")
        elif op == b"D":
            self.done = True
            status = f[HDR]
            sent = struct.unpack(">I", f[HDR + 1:HDR + 5])[0]
            log(f"done frame: payload status {status}, {sent} frames sent, {self.good} "
                f"received")
            if sent != self.good:
                self.fail(f"the payload sent {sent} echo/split frames, {self.good} arrived")
            if not alive(self.pid):
                self.fail(f"smolvm (pid {self.pid}) is not running at the done frame")
            ok = not self.bad
            text = "all frames well-formed" if ok else "; ".join(self.bad)[:400]
            body = bytes([1 if ok else 0]) + text.encode() + b"\0"
            body += b"\0" * max(0, MIN_FRAME - HDR - len(body))
            out = self.mac + PEER_MAC + ETHERTYPE + MAGIC + b"V" + f[23:28] + \
                struct.pack(">I", HDR + len(body)) + f[32:HDR] + body
            self.s.sendall(struct.pack(">I", len(out)) + out)
            self.verdict_sent = True


def main():
    if len(sys.argv) != 5:
        sys.exit("usage: net-peer.py SOCKET GUEST_MAC MTU SMOLVM_PID")
    path = sys.argv[1]
    mac = bytes.fromhex(sys.argv[2].replace(":", ""))
    mtu = int(sys.argv[3])
    pid = int(sys.argv[4])
    end = time.monotonic() + DEADLINE

    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    while True:
        try:
            s.connect(path)
            break
        except (FileNotFoundError, ConnectionRefusedError):
            if not alive(pid):
                log(f"FAIL: smolvm (pid {pid}) ended before it listened on {path}")
                return 1
            if time.monotonic() > end:
                log(f"FAIL: nothing listened on {path} within {DEADLINE} s")
                return 1
            time.sleep(0.05)
    cpid = struct.unpack("3i", s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[0]
    log(f"connected to {path} (listener pid {cpid})")
    p = Peer(s, mac, mtu, pid)
    if cpid != pid:
        p.fail(f"the listener is pid {cpid}, not smolvm's {pid}")

    buf = b""
    synced = True
    while True:
        left = end - time.monotonic()
        if left <= 0:
            p.fail(f"still connected after {DEADLINE} s")
            break
        s.settimeout(left)
        try:
            data = s.recv(1 << 17)
        except socket.timeout:
            continue
        except ConnectionResetError:
            data = b""
        if not data:
            break  # smolvm closed its end: it exited
        if not synced:
            continue
        buf += data
        while len(buf) >= 4:
            n = struct.unpack(">I", buf[:4])[0]
            if n < 14 or n > 65535 + 18:
                p.fail(f"length prefix {n} after seq {p.last_seq} ({p.last_tag}): the stream "
                       f"is out of sync")
                synced = False
                break
            if len(buf) < 4 + n:
                break
            p.frame(buf[4:4 + n])
            buf = buf[4 + n:]
    if synced and buf:
        p.fail(f"the stream ended inside a frame ({len(buf)} bytes left)")
    if not p.done:
        p.fail("the connection closed before the payload's done frame")
    log(f"{p.frames} frames: {p.good} echo/split, {p.hostile} hostile-but-legal, "
        f"{len(p.bad)} bad")
    if p.bad:
        log("FAIL: " + "; ".join(p.bad))
        return 1
    log("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
