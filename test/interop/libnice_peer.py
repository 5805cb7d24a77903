#!/usr/bin/python3
"""A libnice ICE peer driven by line-delimited JSON on stdin/stdout, for icewire's interop tests.

Run it with the system Python (/usr/bin/python3), which has PyGObject; a pyenv `python3` usually does not.

    /usr/bin/python3 libnice_peer.py controlling|controlled [--address 127.0.0.1] [--timeout 30]
        [--nomination regular|aggressive] [--consent-freshness] [--no-echo] [--debug] [--tcp-only]

One stream, one component, UDP host candidates only (with --tcp-only: ICE-TCP host candidates only, RFC 6544),
RFC 5245 compatibility mode (libnice's RFC 8445-era behaviour), no STUN/TURN server, no UPnP, bound to the given
loopback address only.

Output (one JSON object per line):
    {"type":"local","ufrag":..,"pwd":..,"candidates":["candidate:..."]}   once gathering is done
    {"type":"state","state":"gathering"|"connecting"|"connected"|"ready"|"failed"|"disconnected"}
    {"type":"selected","local":{...},"remote":{...}}   address, port, type and the candidate line of each side
    {"type":"data","len":N,"data":"<base64>","echoed":M}   M: bytes echoed back (-1 when echo is off or failed)
    {"type":"sent","len":N}   answer to a "send" command (-1 when nothing could be sent yet)
    {"type":"error","message":..}   a command could not be carried out (the peer keeps running)
    {"type":"exit","reason":"eof"|"quit"|"timeout"|"signal"}   last line before exiting

Input (one JSON object per line):
    {"type":"remote","ufrag":..,"pwd":..,"candidates":["candidate:..."]}   may be repeated to add candidates
    {"type":"send","data":"<base64>"}
    {"type":"quit"}
Stdin EOF also ends the peer; so does the hard timeout (exit code 2).

Data is read through libnice's receive callback. PyGObject cannot bind nice_agent_attach_recv (its callback is not
introspectable), and without a receive callback libnice never polls its sockets on our main context, so the callback
and nice_agent_send (binary-safe, unlike the introspected `send` whose buffer is a C string) go through ctypes.
"""

import argparse
import base64
import ctypes
import ctypes.util
import json
import os
import signal
import sys

import gi

gi.require_version("Nice", "0.1")
from gi.repository import GLib, Nice  # noqa: E402

STREAM_COMPONENT = 1


def emit(obj):
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def load_libnice():
    for name in ("libnice.so.10", ctypes.util.find_library("nice")):
        if not name:
            continue
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    raise OSError("libnice shared library not found")


RECV_FUNC = ctypes.CFUNCTYPE(
    None, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p
)


def gobject_pointer(obj):
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype = ctypes.c_void_p
    get.argtypes = [ctypes.py_object, ctypes.c_char_p]
    return get(obj.__gpointer__, None)


class Peer:
    def __init__(self, args):
        self.args = args
        self.loop = GLib.MainLoop()
        self.lib = load_libnice()
        self.lib.nice_agent_attach_recv.argtypes = [
            ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, RECV_FUNC, ctypes.c_void_p,
        ]
        self.lib.nice_agent_attach_recv.restype = ctypes.c_int
        self.lib.nice_agent_send.argtypes = [
            ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint, ctypes.c_uint, ctypes.c_char_p,
        ]
        self.lib.nice_agent_send.restype = ctypes.c_int

        flags = Nice.AgentOption.NONE
        if args.nomination == "regular":
            flags |= Nice.AgentOption.REGULAR_NOMINATION
        if args.consent_freshness:
            flags |= Nice.AgentOption.CONSENT_FRESHNESS
        ctx = GLib.MainContext.default()
        agent = Nice.Agent.new_full(ctx, Nice.Compatibility.RFC5245, flags)
        agent.set_property("controlling-mode", args.role == "controlling")
        agent.set_property("upnp", False)
        agent.set_property("ice-tcp", args.tcp_only)
        agent.set_property("ice-udp", not args.tcp_only)
        # stun-server is left unset: host candidates only, and no packet leaves loopback.
        addr = Nice.Address.new()
        if not addr.set_from_string(args.address):
            raise ValueError("bad --address %r" % args.address)
        agent.add_local_address(addr)
        self.agent = agent
        self.ptr = gobject_pointer(agent)
        self.stream = agent.add_stream(1)
        agent.set_stream_name(self.stream, "application")

        self.recv_cb = RECV_FUNC(self.on_recv)  # keep a reference: libnice holds the raw pointer
        if not self.lib.nice_agent_attach_recv(self.ptr, self.stream, STREAM_COMPONENT, None, self.recv_cb, None):
            raise RuntimeError("nice_agent_attach_recv failed")

        agent.connect("candidate-gathering-done", self.on_gathering_done)
        agent.connect("component-state-changed", self.on_state)
        agent.connect("new-selected-pair-full", self.on_selected)
        self.gathered = False
        self.exit_reason = None
        self.stdin_buf = b""

    # -- libnice callbacks -------------------------------------------------------------------------------------

    def on_gathering_done(self, agent, stream_id):
        if self.gathered:
            return
        self.gathered = True
        ok, ufrag, pwd = agent.get_local_credentials(stream_id)
        cands = agent.get_local_candidates(stream_id, STREAM_COMPONENT)
        emit({
            "type": "local",
            "ufrag": ufrag,
            "pwd": pwd,
            "candidates": [self.candidate_line(c) for c in cands],
        })

    def on_state(self, agent, stream_id, component_id, state):
        emit({"type": "state", "state": Nice.component_state_to_string(state).lower()})

    def on_selected(self, agent, stream_id, component_id, local, remote):
        emit({"type": "selected", "local": self.describe(local), "remote": self.describe(remote)})

    def on_recv(self, agent_ptr, stream_id, component_id, length, buf, user_data):
        data = ctypes.string_at(buf, length)
        echoed = -1
        if self.args.echo:
            echoed = self.lib.nice_agent_send(self.ptr, stream_id, component_id, len(data), data)
        emit({"type": "data", "len": length, "data": base64.b64encode(data).decode("ascii"), "echoed": echoed})

    # -- helpers ----------------------------------------------------------------------------------------------

    def candidate_line(self, cand):
        line = self.agent.generate_local_candidate_sdp(cand)
        return line[2:] if line.startswith("a=") else line

    def describe(self, cand):
        return {
            "address": cand.addr.dup_string(),
            "port": cand.addr.get_port(),
            "type": Nice.candidate_type_to_string(cand.type).lower(),
            "candidate": self.candidate_line(cand),
        }

    # -- stdin commands ---------------------------------------------------------------------------------------

    def on_stdin(self, fd, condition):
        if condition & GLib.IOCondition.IN:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            if chunk:
                self.stdin_buf += chunk
                while b"\n" in self.stdin_buf:
                    line, self.stdin_buf = self.stdin_buf.split(b"\n", 1)
                    if line.strip():
                        self.command(line)
                return self.exit_reason is None
        self.stop("eof")
        return False

    def command(self, line):
        try:
            msg = json.loads(line)
            kind = msg.get("type")
            if kind == "remote":
                self.set_remote(msg)
            elif kind == "send":
                data = base64.b64decode(msg["data"])
                n = self.lib.nice_agent_send(self.ptr, self.stream, STREAM_COMPONENT, len(data), data)
                emit({"type": "sent", "len": n})
            elif kind == "quit":
                self.stop("quit")
            else:
                emit({"type": "error", "message": "unknown command %r" % kind})
        except Exception as exc:  # a bad command must not kill the peer mid-test
            emit({"type": "error", "message": "%s: %s" % (type(exc).__name__, exc)})

    def set_remote(self, msg):
        if not self.agent.set_remote_credentials(self.stream, msg["ufrag"], msg["pwd"]):
            raise ValueError("set_remote_credentials failed")
        cands = []
        for text in msg.get("candidates", []):
            sdp = text if text.startswith("a=") else "a=" + text
            cand = self.agent.parse_remote_candidate_sdp(self.stream, sdp)
            if cand is None:
                raise ValueError("libnice cannot parse candidate %r" % text)
            cands.append(cand)
        if cands:
            added = self.agent.set_remote_candidates(self.stream, STREAM_COMPONENT, cands)
            if added < 0:
                raise ValueError("set_remote_candidates failed")

    # -- lifecycle --------------------------------------------------------------------------------------------

    def stop(self, reason):
        if self.exit_reason is None:
            self.exit_reason = reason
            self.loop.quit()
        return False

    def run(self):
        GLib.unix_fd_add_full(
            GLib.PRIORITY_DEFAULT, sys.stdin.fileno(),
            GLib.IOCondition.IN | GLib.IOCondition.HUP | GLib.IOCondition.ERR, self.on_stdin,
        )
        GLib.timeout_add_seconds(self.args.timeout, self.stop, "timeout")
        for signum in (signal.SIGTERM, signal.SIGINT):
            GLib.unix_signal_add(GLib.PRIORITY_HIGH, signum, self.stop, "signal")
        if not self.agent.gather_candidates(self.stream):
            raise RuntimeError("gather_candidates failed")
        self.loop.run()
        emit({"type": "exit", "reason": self.exit_reason})
        self.agent.remove_stream(self.stream)
        return 2 if self.exit_reason == "timeout" else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("role", choices=["controlling", "controlled"])
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--timeout", type=int, default=30, help="hard timeout in seconds")
    parser.add_argument("--nomination", choices=["regular", "aggressive"], default="regular")
    parser.add_argument("--consent-freshness", action="store_true")
    parser.add_argument("--no-echo", dest="echo", action="store_false")
    parser.add_argument("--debug", action="store_true", help="libnice debug output on stderr")
    parser.add_argument("--tcp-only", action="store_true", help="ICE-TCP candidates only (RFC 6544), no UDP")
    args = parser.parse_args()
    if args.debug:
        os.environ["G_MESSAGES_DEBUG"] = "all"
        Nice.debug_enable(True)
    sys.exit(Peer(args).run())


if __name__ == "__main__":
    main()
