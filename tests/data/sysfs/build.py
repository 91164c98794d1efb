#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Builds the fake hosts under this directory: a sysfs tree (and /proc/cpuinfo) laid out as the
kernel lays it out, for the inventory's discovery tests. The trees are committed; run this only
after changing it (it rewrites them):

    python3 tests/data/sysfs/build.py

qat-host   2-socket Xeon (Sapphire Rapids), 2 NUMA nodes: two QAT 4xxx (8086:4940) with 4 and 2 VFs
           enabled of 16, a QAT C62x (8086:37c8) with 2 of 16, an E810 NIC (8086:1593) with 8 of
           128 VFs, an I210 NIC without SR-IOV, a host bridge.
ccp-host   1-socket EPYC (Milan), 1 NUMA node: an AMD CCP (1022:1468) and a PSP/CCP (1022:1486), a
           ConnectX-5 (15b3:1017) with 0 of 8 VFs, an encryption controller of an unknown vendor.
"""

from __future__ import annotations

import os
import pathlib
import shutil

HERE = pathlib.Path(__file__).resolve().parent


def write(path: pathlib.Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def link(path: pathlib.Path, target: pathlib.Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(os.path.relpath(target, path.parent), path)


class Host:
    def __init__(self, name: str) -> None:
        self.root = HERE / name
        shutil.rmtree(self.root, ignore_errors=True)
        self.sys = self.root / "sys"

    def driver(self, name: str) -> pathlib.Path:
        d = self.sys / "bus/pci/drivers" / name
        d.mkdir(parents=True, exist_ok=True)
        return d

    def pci(self, addr: str, vendor: int, device: int, cls: int, *, driver: str | None = None, numa: int = -1,
            totalvfs: int | None = None, numvfs: int = 0, vf_device: int | None = None, vf_driver: str | None = None,
            net: tuple[str, ...] = (), bus: str | None = None) -> pathlib.Path:
        bus = bus or f"pci0000:{addr[5:7]}"
        d = self.sys / "devices" / bus / addr
        attrs = {"vendor": f"0x{vendor:04x}", "device": f"0x{device:04x}", "class": f"0x{cls:06x}",
                 "subsystem_vendor": f"0x{vendor:04x}", "subsystem_device": "0x0000", "numa_node": str(numa),
                 "uevent": f"DRIVER={driver or ''}\nPCI_CLASS={cls:X}\nPCI_ID={vendor:04X}:{device:04X}\n"
                           f"PCI_SLOT_NAME={addr}\n"}
        if totalvfs is not None:
            attrs |= {"sriov_totalvfs": str(totalvfs), "sriov_numvfs": str(numvfs)}
        for k, v in attrs.items():
            write(d / k, v + "\n")
        link(self.sys / "bus/pci/devices" / addr, d)
        if driver:
            link(d / "driver", self.driver(driver))
        for ifname in net:
            write(d / "net" / ifname / "address", "02:00:00:00:00:01\n")
        dom, b, slot_fn = addr.split(":")
        slot = int(slot_fn.split(".")[0], 16)
        for i in range(numvfs):
            assert vf_device is not None
            fn = i + 1
            vf_addr = f"{dom}:{b}:{slot + fn // 8:02x}.{fn % 8}"
            vf = self.pci(vf_addr, vendor, vf_device, cls, driver=vf_driver, numa=numa, bus=bus)
            link(vf / "physfn", d)
            link(d / f"virtfn{i}", vf)
        return d

    def node(self, n: int, cpus: str, mem_kb: int) -> None:
        d = self.sys / "devices/system/node" / f"node{n}"
        write(d / "cpulist", cpus + "\n")
        write(d / "meminfo", f"Node {n} MemTotal:       {mem_kb} kB\nNode {n} MemFree:        {mem_kb // 2} kB\n")

    def cpuinfo(self, vendor: str, model: str, cpus: int, sockets: int, flags: str) -> None:
        per = cpus // sockets
        text = "".join(f"processor\t: {i}\nvendor_id\t: {vendor}\nmodel name\t: {model}\nphysical id\t: {i // per}\n"
                       f"flags\t\t: {flags}\n\n" for i in range(cpus))
        write(self.root / "proc/cpuinfo", text)


XEON_FLAGS = ("fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ss "
              "ht syscall nx pdpe1gb rdtscp lm constant_tsc pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic "
              "movbe popcnt aes xsave avx f16c rdrand hypervisor lahf_lm abm 3dnowprefetch bmi1 avx2 smep bmi2 erms "
              "invpcid avx512f avx512dq rdseed adx smap avx512ifma clflushopt clwb avx512cd sha_ni avx512bw "
              "avx512vl xsaveopt xsavec xgetbv1 xsaves avx_vnni avx512_bf16 wbnoinvd arat avx512vbmi umip pku "
              "ospke waitpkg avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg avx512_vpopcntdq rdpid "
              "movdiri movdir64b enqcmd serialize tsxldtrk amx_bf16 avx512_fp16 amx_tile amx_int8 arch_capabilities")
EPYC_FLAGS = ("fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht "
              "syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl cpuid pni pclmulqdq ssse3 fma "
              "cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt aes xsave avx f16c rdrand lahf_lm cmp_legacy svm "
              "extapic cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw topoext bmi1 avx2 smep bmi2 erms invpcid "
              "rdseed adx smap clflushopt clwb sha_ni xsaveopt xsavec xgetbv1 xsaves clzero wbnoinvd arat umip pku "
              "ospke vaes vpclmulqdq rdpid fsrm")


def qat_host() -> None:
    h = Host("qat-host")
    h.cpuinfo("GenuineIntel", "Intel(R) Xeon(R) Gold 6438N", 8, 2, XEON_FLAGS)
    h.node(0, "0-3", 64 * 1024 * 1024)
    h.node(1, "4-7", 64 * 1024 * 1024)
    h.pci("0000:00:00.0", 0x8086, 0x09A2, 0x060000, numa=0)                       # host bridge
    h.pci("0000:6b:00.0", 0x8086, 0x4940, 0x0B4000, driver="4xxx", numa=0, totalvfs=16, numvfs=4,
          vf_device=0x4941, vf_driver="4xxxvf")
    h.pci("0000:70:00.0", 0x8086, 0x4940, 0x0B4000, driver="4xxx", numa=1, totalvfs=16, numvfs=2,
          vf_device=0x4941, vf_driver="vfio-pci")
    h.pci("0000:3d:00.0", 0x8086, 0x37C8, 0x0B4000, driver="c6xx", numa=0, totalvfs=16, numvfs=2,
          vf_device=0x37C9, vf_driver="c6xxvf")
    h.pci("0000:4b:00.0", 0x8086, 0x1593, 0x020000, driver="ice", numa=0, totalvfs=128, numvfs=8,
          vf_device=0x1889, vf_driver="iavf", net=("ens1f0",))
    h.pci("0000:02:00.0", 0x8086, 0x1533, 0x020000, driver="igb", numa=0, net=("eno1",))


def ccp_host() -> None:
    h = Host("ccp-host")
    h.cpuinfo("AuthenticAMD", "AMD EPYC 7313P 16-Core Processor", 4, 1, EPYC_FLAGS)
    h.node(0, "0-3", 128 * 1024 * 1024)
    h.pci("0000:00:00.0", 0x1022, 0x1480, 0x060000, numa=0)                       # root complex
    h.pci("0000:22:00.1", 0x1022, 0x1468, 0x108000, driver="ccp", numa=0)
    h.pci("0000:23:00.2", 0x1022, 0x1486, 0x108000, driver="ccp", numa=0)
    h.pci("0000:41:00.0", 0x15B3, 0x1017, 0x020000, driver="mlx5_core", numa=0, totalvfs=8, numvfs=0,
          net=("enp65s0f0np0",))
    h.pci("0000:81:00.0", 0x1DED, 0x0001, 0x100000, numa=0)                       # unknown encryption ctrl


if __name__ == "__main__":
    qat_host()
    ccp_host()
    print(f"wrote {', '.join(sorted(p.name for p in HERE.iterdir() if p.is_dir()))}")
