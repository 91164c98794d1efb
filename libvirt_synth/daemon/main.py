# SPDX-License-Identifier: Apache-2.0
"""``virt-synthd``: the host backend daemon, in the foreground.

Serves the synthetic devices of every VM on this host from C worker threads, answers JSON-RPC 2.0
on a Unix socket (the libvirt hook, the CLI), keeps a registry under the state directory, and
re-attaches every live region when it restarts. SIGTERM or SIGINT stops it cleanly; regions stay
for the VMs that map them."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence

from libvirt_synth import __version__, errors, log
from libvirt_synth.cmdline import Formatter, stdout_gone
from libvirt_synth.daemon import config as config_mod
from libvirt_synth.daemon import supervisor
from libvirt_synth.daemon.rpc import RpcServer
from libvirt_synth.daemon.service import Service

EPILOG = f"""defaults:
  config     {config_mod.DEFAULT_CONFIG} (if it exists)
  socket     {config_mod.DEFAULT_SOCKET}
  state dir  {config_mod.DEFAULT_STATE_DIR}

examples:
  virt-synthd                                   # as installed by the Ansible role / systemd unit
  virt-synthd --state-dir /tmp/s --socket /tmp/s/synthd.sock --region-dir /tmp/s/regions
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="virt-synthd", description=__doc__, epilog=EPILOG, formatter_class=Formatter)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("--config", default=None, help="configuration file (TOML)")
    p.add_argument("--socket", default=None, help="JSON-RPC socket path")
    p.add_argument("--state-dir", default=None, help="registry and key vault directory")
    p.add_argument("--region-dir", default=None, help="where region files go (libvirt maps /dev/shm)")
    p.add_argument("--plugin-dir", default=None, help="external plugins (*.so) to load at start")
    p.add_argument("--workers", type=int, default=None, help="worker threads")
    p.add_argument("--cpus", default=None, help="CPUs for the workers, e.g. 2-3")
    p.add_argument("--group", default=None, help="group whose members may change state (root always may)")
    p.add_argument("--qemu-user", default=None, help="owner of region files (the QEMU user)")
    p.add_argument("--prometheus-port", type=int, default=None, help="serve /metrics on PORT (0: off)")
    p.add_argument("--prometheus-address", default=None, help="the IP address /metrics listens on (default 127.0.0.1)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return p


async def serve(cfg: config_mod.Config, reload: Callable[[], config_mod.Config] | None = None) -> int:
    service = Service(cfg)  # takes the state directory's lock: one daemon per state directory
    server = RpcServer(service, cfg.socket, cfg.group)
    try:
        server.claim()  # before re-attaching anything: refuses if another daemon answers there
        service.restore()
        if cfg.prometheus_port:  # before the socket answers: a port taken stops the start, cleanly
            from libvirt_synth.daemon import metrics

            metrics.start(service, cfg.prometheus_port, cfg.prometheus_address)
        await server.start()
    except BaseException:
        service.close()
        raise
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def on_hup() -> None:
        supervisor.notify("RELOADING=1")
        try:
            if reload is None:
                raise errors.ValueError("no configuration to reload")
            live, later = supervisor.apply(service, reload())
            server.group = service.cfg.group
            log.info("configuration reloaded: %s%s", ", ".join(live) or "nothing changed",
                     f"; {', '.join(later)} changed but take effect only at a restart" if later else "")
        except errors.SynthError as e:  # a typo in the file must not stop the daemon: keep the old one
            for line in str(e).splitlines() or [""]:
                log.error("configuration not reloaded: %s", line)
        supervisor.notify("READY=1")

    loop.add_signal_handler(signal.SIGHUP, on_hup)
    log.info("virt-synthd %s ready on %s (state %s, %d devices re-attached)", __version__, cfg.socket,
             cfg.state_dir, len(service.devices))
    supervisor.notify(f"READY=1\nSTATUS=serving {len(service.devices)} devices\nMAINPID={os.getpid()}")

    progress = supervisor.Progress()

    def look() -> None:
        """Once a second, off the event loop: the workers' progress and the devices' SLA samples,
        under the service lock (a device is not destroyed while its counters are read)."""
        if not service.lock.acquire(timeout=5.0):
            return  # a long change holds it: look next time
        try:
            st = service.backend.stats()
            stalled = progress.stalled(st["workers"], time.monotonic(), st["watch_rounds"])
            service.sla.tick(service)
        finally:
            service.lock.release()
        if stalled != service.stalled_workers:
            (log.error if stalled else log.info)("shared workers stalled (no poll pass for %.0f s): %s",
                                                 progress.limit, stalled or "none any more")
            service.stalled_workers = stalled

    async def keep_registry() -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                await loop.run_in_executor(None, look)
            except Exception:  # telemetry must not take the daemon down
                log.exception("looking at the workers and devices")
            try:
                await loop.run_in_executor(None, service.sync_sessions)
            except Exception:  # the registry must not take the daemon down
                log.exception("recording sessions in the registry")

    async def feed_watchdog(every: float) -> None:
        while True:
            if service.stalled_workers:  # the watchdog then restarts the daemon (logged by look())
                log.error("workers %s make no progress: not feeding the watchdog", service.stalled_workers)
            else:
                supervisor.notify("WATCHDOG=1")
            await asyncio.sleep(every)

    tasks = [loop.create_task(keep_registry())]
    every = supervisor.watchdog_interval()
    if every is not None:
        tasks.append(loop.create_task(feed_watchdog(every)))
    try:
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        log.info("stopping")
        supervisor.notify("STOPPING=1")
        await server.close()
        service.close()
    log.info("stopped")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        try:
            args = build_parser().parse_args(argv)
        finally:  # --help, --version: their output goes now, while a closed pipe can be caught
            sys.stdout.flush()
    except BrokenPipeError:  # `virt-synthd --help | head -1`: quietly
        return stdout_gone()
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s virt-synthd[%(process)d] %(levelname)s: %(message)s")
    try:
        options = {  # as given: checked as the file's values are
            "socket": args.socket, "state_dir": args.state_dir, "region_dir": args.region_dir,
            "plugin_dir": args.plugin_dir, "workers": args.workers, "cpus": args.cpus,
            "group": args.group, "qemu_user": args.qemu_user, "prometheus_port": args.prometheus_port,
            "prometheus_address": args.prometheus_address,
        }
        cfg = config_mod.load(args.config, options, check_host=True)
        if not os.path.isdir(cfg.region_dir):
            raise errors.NotFoundError(f"region directory {cfg.region_dir} does not exist")
        return asyncio.run(serve(cfg, lambda: config_mod.load(args.config, options, check_host=True)))
    except errors.SynthError as e:
        for line in str(e).splitlines() or [""]:  # a configuration's mistakes: one line each
            print(f"virt-synthd: error: {line}", file=sys.stderr)
        return 1
    except sqlite3.Error as e:
        print(f"virt-synthd: error: registry {e} (state directory: is it writable and not corrupt?)",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
