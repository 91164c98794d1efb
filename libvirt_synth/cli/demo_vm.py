# SPDX-License-Identifier: Apache-2.0
"""``virt-synth demo --connect qemu:///system``: the end-to-end flow, step by step, for a person.

1. the guest image (built, or found in the cache) and a copy QEMU can read;
2. a virt-synthd: the one the installed hook calls if it answers, else one started for the demo
   in a temporary directory, with the hook installed for it and libvirtd restarted (both undone
   at the end);
3. the domain XML: template vnf-kernel + a crypto, a compression and two packet devices;
4. define and start it: the hook asks virt-synthd for the devices; the guest's console, live;
5. what the guest found, every result against the host's own computation, AF_ALG, bench;
6. clean up.
"""

from __future__ import annotations

import argparse
import errno
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid as uuidlib
from typing import Any

from libvirt_synth import errors
from libvirt_synth.daemon import client
from libvirt_synth.hook import install as hookinstall
from libvirt_synth.testbed import image as guestimage
from libvirt_synth.testbed import vm as guestvm

PUBLISH_DIR = pathlib.Path("/var/lib/libvirt/images/libvirt-synth-guest")  # QEMU (libvirt-qemu) must read it
NAME = "synth-demo-vm"


def devices(prefix: str) -> list[str]:
    return [f"crypto:name={prefix}-0,caps=aes-256-gcm", f"compress:name={prefix}-1",
            f"packet:name={prefix}-2,opt.link=wire:{prefix}-3", f"packet:name={prefix}-3,opt.link=wire:{prefix}-2"]


def installed_hook_socket() -> str | None:
    """The socket the installed hook calls, or None if no hook is installed."""
    try:
        text = hookinstall.hook_path("/").read_text()
    except OSError:
        return None
    m = re.search(r'^hook\.SOCKET_PATH = "([^"]*)"', text, re.M)
    return m.group(1) if m else None


def answers(socket: str) -> bool:
    try:
        client.call("health", socket, timeout=2)
        return True
    except client.RpcError:
        return False


def restart_libvirtd() -> str:
    """Restart libvirtd (it reads hooks when it starts); returns how."""
    if os.path.isdir("/run/systemd/system") and shutil.which("systemctl"):
        subprocess.run(["systemctl", "restart", "libvirtd"], check=True)
        how = "systemctl restart libvirtd"
    else:
        r = subprocess.run(["pgrep", "-x", "libvirtd"], capture_output=True, text=True)
        for pid in (int(p) for p in r.stdout.split()):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 15
            while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
                time.sleep(0.1)
            if os.path.exists(f"/proc/{pid}"):
                os.kill(pid, signal.SIGKILL)
                time.sleep(0.5)
        subprocess.run(["libvirtd", "-d"], check=True)
        how = "libvirtd stopped (SIGTERM) and started again (libvirtd -d)"
    for _ in range(100):
        if subprocess.run(["virsh", "-c", "qemu:///system", "version"], capture_output=True).returncode == 0:
            return how
        time.sleep(0.2)
    raise errors.TimeoutError("libvirtd did not answer after its restart")


class Host:
    """The host side for the demo: a virt-synthd and the hook that calls it."""

    def __init__(self, tmp: pathlib.Path, plugin: str | None) -> None:
        self.tmp = tmp
        self.plugin = plugin
        self.proc: subprocess.Popen[bytes] | None = None
        self.old_hook: str | None = None
        self.hook_changed = False
        self.socket = installed_hook_socket() or ""

    def setup(self) -> dict[str, Any]:
        if self.socket and answers(self.socket) and not self.plugin:
            return {"virt-synthd": f"the running one, at {self.socket}", "hook": str(hookinstall.hook_path("/"))}
        self.socket = str(self.tmp / "synthd.sock")
        cmd = [sys.executable, "-m", "libvirt_synth.daemon.main", "--socket", self.socket, "--state-dir",
               str(self.tmp / "state"), "--region-dir", "/dev/shm", "--qemu-user", "libvirt-qemu"]
        if self.plugin:
            cfg = self.tmp / "virt-synthd.toml"
            cfg.write_text(f'[plugins.pin]\ncrypto = "{self.plugin}"\n')
            cmd += ["--config", str(cfg)]
        with open(self.tmp / "virt-synthd.log", "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=log)
        for _ in range(200):
            if answers(self.socket):
                break
            if self.proc.poll() is not None:
                raise errors.DeviceError(f"virt-synthd exited: {(self.tmp / 'virt-synthd.log').read_text()[-800:]}")
            time.sleep(0.05)
        path = hookinstall.hook_path("/")
        self.old_hook = path.read_text() if path.is_file() else None
        hookinstall.install("/", self.socket)
        self.hook_changed = True
        how = restart_libvirtd()
        return {"virt-synthd": f"started for the demo: pid {self.proc.pid}, socket {self.socket}",
                "command": " ".join(cmd[2:]), "crypto plugin": self.plugin or "the daemon's choice",
                "hook": f"{path} -> {self.socket}", "libvirtd": how}

    def served(self) -> list[dict[str, Any]]:
        try:
            return list(client.call("devices.list", self.socket, timeout=5))
        except client.RpcError:
            return []

    def teardown(self) -> list[str]:
        done = []
        if self.hook_changed:
            path = hookinstall.hook_path("/")
            if self.old_hook is None:
                hookinstall.remove("/")
                done.append(f"hook {path} removed")
            else:
                path.write_text(self.old_hook)
                done.append(f"hook {path} restored")
            done.append(restart_libvirtd())
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            done.append(f"virt-synthd stopped (exit status {self.proc.returncode})")
        return done


def guest_programs() -> dict[str, pathlib.Path]:
    inputs = guestimage.default_inputs()
    missing = [k for k in ("synth-guest", "afalg-kat") if not inputs[k].is_file()]
    if missing and (guestimage.ROOT / "Makefile").is_file():
        subprocess.run(["make", "-s", "-C", str(guestimage.ROOT), "guest-inputs"], check=True)
    return inputs


def console_printer(as_json: bool) -> Any:
    def show(line: str) -> None:
        if as_json:
            return
        at = line.find(guestvm.MARK)
        if at >= 0:
            line = line[at:]
        elif not line.startswith(("{", "afalg-kat")):
            return  # firmware and kernel noise
        print(f"   | {line[:110]}{' ...' if len(line) > 110 else ''}")
        sys.stdout.flush()
    return show


def run(args: argparse.Namespace, out: Any) -> int:
    from libvirt_synth.xml import connect

    if os.geteuid() != 0:
        raise errors.PermissionError(errno.EPERM, "the VM demo runs as root: it installs the libvirt hook and QEMU "
                                     "runs as libvirt-qemu (try sudo, or `virt-synth demo` without --connect)")
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="virt-synth-demo-vm-"))
    tmp.chmod(0o755)
    host = Host(tmp, args.plugin)
    conn = None
    ok = False
    try:
        image = guestimage.build(guest_programs(), say=lambda m: None if args.json else print(f"   {m}"))
        image = guestimage.publish(image, PUBLISH_DIR)
        out.say("guest image: Debian's kernel, busybox-static, synth-guest, afalg-kat", kernel=image.kernel,
                initrd=image.initrd, kernel_version=image.kernel_version, key=image.key,
                modules=", ".join(image.manifest["modules"]))
        out.say("host backend", **host.setup())

        dom_uuid = str(uuidlib.uuid4())
        prefix = f"synth-{dom_uuid.replace('-', '')[:12]}"
        inputs = guestvm.Inputs.make(int.from_bytes(os.urandom(4), "big"))
        console_log = tmp / "console.log"
        xml = guestvm.domain_xml(NAME, dom_uuid, str(image.kernel), str(image.initrd), inputs.cmdline(),
                                 devices(prefix), str(console_log))
        (tmp / "domain.xml").write_text(xml)
        out.say("domain XML: template vnf-kernel + the XML generator (virt-synth xml)", file=tmp / "domain.xml",
                devices=", ".join(d.split(":")[0] + " " + d.split("name=")[1].split(",")[0] for d in devices(prefix)),
                cmdline=f"{len(inputs.cmdline())} bytes: synth.cmd={','.join(inputs.steps)}, keys, data, frames")

        conn = connect.open_connection(args.connect)
        served: list[dict[str, Any]] = []
        show = console_printer(args.json)

        def on_line(line: str) -> None:
            if "@@SYNTH-BEGIN probe" in line and not served:
                served.extend(host.served())
            show(line)

        out.say(f"define and start {NAME} on {args.connect}; the guest's console:")
        t0 = time.monotonic()
        console = guestvm.run_domain(conn, xml, str(console_log), timeout=args.timeout, on_line=on_line)
        run_s = time.monotonic() - t0
        out.say("the hook had asked virt-synthd for the devices; QEMU mapped them", seconds=round(run_s, 1),
                served=", ".join(f"{d['name']} ({d.get('class')}, {d.get('plugin')})" for d in served) or "?")

        result = guestvm.parse_console(console)
        for d in result.step("probe").of("device"):
            out.say(f"the guest found {d['dev']}: {d['class']}", name=d["name"], abi=d["abi"], backend=d["backend"],
                    features=d["features_accepted"],
                    offers=", ".join(d.get("algorithms", [])) or "links: " + ", ".join(d.get("links", [])))
        checks = guestvm.check(result, inputs, packets=False)
        packet = guestvm.check_packets(result.step("selftest").of("packet"), inputs)
        bad = [c for c in checks if not c.ok]
        out.say("every result against the host's own computation", checked=len(checks),
                failed=len(bad), **{c.what: c.detail for c in bad[:5]})
        out.say("packets", **{c.what: ("ok" if c.ok else f"NOT YET: {c.detail}") for c in packet},
                note="virt-synthd does not link packet devices yet, so frames sent are dropped and counted; "
                     "see docs/guest.md")
        for r in result.steps.get("bench", guestvm.Step("bench")).of("bench"):
            out.say(f"bench {r['dev']}: {r['what']}", ops_per_s=r["ops_per_s"], mb_per_s=r["mb_per_s"],
                    note="TCG: an emulated CPU")
        ok = not bad
    finally:
        done = []
        if conn is not None and not args.keep:
            try:
                connect.undefine(conn, NAME, force=True)
                done.append(f"{NAME} undefined")
            except errors.SynthError as e:
                done.append(f"{NAME}: {e}")
        done += host.teardown()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            done.append(f"kept {tmp}")
        out.say("clean up", done="; ".join(done))
    if args.json:
        from libvirt_synth.cli.output import emit_json

        emit_json({"ok": ok, "steps": out.steps})
    else:
        print("\ndemo " + ("succeeded" if ok else "FAILED"))
    return 0 if ok else 1
