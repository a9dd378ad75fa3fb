"""PXE config generation: pxelinux/GRUB/iPXE files, validation, templates, sync."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from regional_client.core.errors import ConfigError, NotFound, ValidationError
from regional_client.pxe.generator import PxeGenerator
from regional_client.pxe.spec import BootSpec
from tests.pxe.conftest import URL, make_gen, task

SEED_EXAMPLE = """DEFAULT linux
LABEL linux
    KERNEL kernels/vmlinuz-ubuntu-22.04
    APPEND initrd=initrds/initrd-ubuntu-22.04.img \\
           ip=dhcp \\
           console=tty0 console=ttyS0,115200n8 \\
           regional_url=http://192.168.100.1:8081 \\
           auto_install=true \\
           sn=auto
TIMEOUT 50
PROMPT 0
"""
LDLINUX = Path("/usr/lib/syslinux/modules/bios/ldlinux.c32")


def parse_pxelinux(text: str) -> list[tuple[str, str]]:
    """Directives as pxelinux reads them: one per line, keyword + rest, '#' lines ignored.
    (The seed's backslash continuations are a pretty-print; they are joined here.)"""
    text = text.replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        kw, _, rest = s.partition(" ")
        out.append((kw.lower(), " ".join(rest.split())))
    return out


def test_generate_writes_three_files(gen: PxeGenerator, tftp_root: Path) -> None:
    paths = gen.generate(task(mac="00:1A:2B:3C:4D:5E"))
    rel = sorted(str(p.relative_to(tftp_root)) for p in paths)
    assert rel == [
        "grub/grub.cfg-01-00-1a-2b-3c-4d-5e",
        "ipxe/01-00-1a-2b-3c-4d-5e.ipxe",
        "pxelinux.cfg/01-00-1a-2b-3c-4d-5e",
    ]
    for p in paths:
        assert oct(p.stat().st_mode & 0o777) == "0o644"
        text = p.read_text()
        for param in ("regional_url=" + URL, "sn=SN001", "auto_install=true"):
            assert param in text
        assert "agent_token" not in text and "tok-aaaa" not in text  # never a secret (§5)
        assert "console=ttyS0,115200n8" in text
    assert not [p for p in tftp_root.rglob(".*")], "temporary files left behind"


def test_pxelinux_matches_seed_example_structure(gen: PxeGenerator) -> None:
    ours = parse_pxelinux(gen.render(gen_spec())["pxelinux"])
    seed = parse_pxelinux(SEED_EXAMPLE)
    assert [k for k, _ in ours] == [k for k, _ in seed]
    o, s = dict(ours), dict(seed)
    assert o["kernel"] == s["kernel"]
    assert o["default"] == s["default"] and o["label"] == s["label"] and o["prompt"] == "0"
    seed_params = s["append"].split()
    our_params = o["append"].split()
    assert our_params[0] == seed_params[0]  # initrd=initrds/initrd-ubuntu-22.04.img
    keys = {p.split("=")[0] for p in our_params}
    assert {p.split("=")[0] for p in seed_params} <= keys


def gen_spec() -> BootSpec:
    return BootSpec.from_task(task())


@pytest.mark.skipif(not LDLINUX.exists(), reason="syslinux-common not installed")
def test_pxelinux_keywords_known_to_real_ldlinux(gen: PxeGenerator) -> None:
    """Every directive we write is a keyword in the string table of Debian's ldlinux.c32
    (the pxelinux config parser), and lines stay within its limits."""
    table = subprocess.run(
        ["strings", "-n", "3", str(LDLINUX)], capture_output=True, text=True, check=True
    ).stdout.lower()
    gen.write_defaults()
    texts = [gen.render(gen_spec())["pxelinux"], gen.render_defaults()["pxelinux"]]
    d = make_gen(gen.root / "d", default_action="discovery")
    texts.append(d.render_defaults()["pxelinux"])
    for text in texts:
        for kw, rest in parse_pxelinux(text):
            assert kw in table, kw
            assert len(rest) < 2048
        assert "\t" not in text and "\r" not in text


@pytest.mark.skipif(shutil.which("grub-script-check") is None, reason="grub-common missing")
def test_grub_configs_pass_grub_script_check(gen: PxeGenerator, tftp_root: Path) -> None:
    gen.generate(task())
    gen.write_defaults()
    d = make_gen(tftp_root / "disc", default_action="discovery")
    d.write_defaults()
    files = list(tftp_root.rglob("grub.cfg*"))
    assert len(files) == 3
    for f in files:
        r = subprocess.run(["grub-script-check", str(f)], capture_output=True, text=True)
        assert r.returncode == 0, (f, r.stdout, r.stderr)


def test_grub_dispatcher_hands_over_per_mac(gen: PxeGenerator) -> None:
    text = gen.render_defaults()["grub"]
    assert "$net_default_mac" in text
    assert 'configfile "$prefix/grub.cfg-01-$lp_m1-$lp_m2-$lp_m3-$lp_m4-$lp_m5-$lp_m6"' in text
    assert text.rstrip().endswith("}")  # default (local boot) entry follows


def test_ipxe_script(gen: PxeGenerator) -> None:
    text = gen.render(gen_spec())["ipxe"]
    lines = text.splitlines()
    assert lines[0] == "#!ipxe" and lines[1].startswith("# lpmos {")
    assert lines[2].startswith(f"kernel {URL}/boot/kernels/vmlinuz-ubuntu-22.04 initrd=initrd ")
    assert lines[3] == f"initrd --name initrd {URL}/boot/initrds/initrd-ubuntu-22.04.img"
    assert lines[4] == "boot"
    chain = gen.render_defaults()["ipxe_chain"]
    assert f"chain {URL}/boot/ipxe/${{net0/mac}}" in chain


def test_task_paths_and_params(gen: PxeGenerator, tftp_root: Path) -> None:
    t = task(
        pxe={
            "kernel_path": str(tftp_root / "custom/vmlinuz"),
            "initrd_path": "custom/initrd.img",
            "kernel_params": "quiet sn=evil regional_url=http://evil auto_install=false "
            "agent_token=planted-by-someone",
        }
    )
    text = gen.render(BootSpec.from_task(t))
    pxe = dict(parse_pxelinux(text["pxelinux"]))
    assert pxe["kernel"] == "custom/vmlinuz"
    params = pxe["append"].split()
    assert params[0] == "initrd=custom/initrd.img" and "quiet" in params
    assert "sn=evil" not in params and "regional_url=http://evil" not in params
    assert "auto_install=false" not in params
    assert params[-4:-1] == [f"regional_url={URL}", "sn=SN001", "auto_install=true"]
    assert not [p for p in params if p.startswith("agent_token")]
    assert "BOOTIF=01-00-1a-2b-3c-4d-5e" in params


@pytest.mark.parametrize(
    "bad",
    [
        {"hostname": "node1\nDEFAULT evil"},
        {"hostname": "a b"},
        {"os_type": "../../etc"},
        {"os_version": "22.04/x"},
        {"sn": "SN 1"},
        {"mac": "zz:zz"},
        {"pxe": {"kernel_params": "quiet\nLABEL evil"}},
        {"pxe": {"kernel_params": "x=${evil}"}},
        {"pxe": {"kernel_params": "a; reboot"}},
        {"pxe": {"kernel_params": "ks=http://h/a?x=1&y=2"}},
        {"pxe": {"kernel_params": "x='quoted'"}},
        {"pxe": {"kernel_path": "../../etc/shadow"}},
        {"pxe": {"kernel_path": "/etc/passwd\x00"}},
        {"pxe": {"kernel_path": "kernels/vm linuz"}},
        {"pxe": {"initrd_path": ".hidden/initrd"}},
        {"os_type": None},
    ],
)
def test_invalid_input_refused_and_nothing_written(
    gen: PxeGenerator, tftp_root: Path, bad: dict
) -> None:
    gen.generate(task())
    before = {p: p.read_bytes() for p in tftp_root.rglob("*") if p.is_file()}
    with pytest.raises(ValidationError):
        gen.generate(task(**bad))
    after = {p: p.read_bytes() for p in tftp_root.rglob("*") if p.is_file()}
    assert before == after


def test_get_and_list(gen: PxeGenerator) -> None:
    gen.generate(task())
    gen.generate(task(sn="SN002", mac="00:1a:2b:3c:4d:5f", hostname="node2"))
    info = gen.get("00-1A-2B-3C-4D-5E")
    assert info["sn"] == "SN001" and info["hostname"] == "node1" and info["os_type"] == "ubuntu"
    assert set(info["files"]) == {"pxelinux", "grub", "ipxe"}
    for f in info["files"].values():
        assert "agent_token" not in f["content"] and "tok-aaaa" not in f["content"]
    assert "tok-aaaa" not in str(gen.get("00:1a:2b:3c:4d:5e", reveal=True))
    listed = gen.list()
    assert [c["sn"] for c in listed] == ["SN001", "SN002"]
    with pytest.raises(NotFound):
        gen.get("00:00:00:00:00:01")


def test_remove_is_idempotent(gen: PxeGenerator) -> None:
    paths = gen.generate(task())
    assert sorted(gen.remove("00:1a:2b:3c:4d:5e")) == sorted(paths)
    assert not any(p.exists() for p in paths)
    assert gen.remove("00:1a:2b:3c:4d:5e") == []


def test_sync_matches_tasks_exactly(gen: PxeGenerator, tftp_root: Path) -> None:
    gen.generate(task(sn="OLD", mac="02:00:00:00:00:01"))
    (tftp_root / "pxelinux.cfg" / "01-02-00-00-00-00-02").write_text("stale by hand\n")
    res = gen.sync(
        [
            task(sn="A1", mac="02:00:00:00:00:0a"),
            task(sn="B1", mac="02:00:00:00:00:0b", os_type="rocky", os_version="9"),
            task(sn="BAD", mac="02:00:00:00:00:0c", hostname="bad host"),
        ]
    )
    assert sorted(res.written) == ["02:00:00:00:00:0a", "02:00:00:00:00:0b"]
    assert sorted(res.removed) == ["02:00:00:00:00:01", "02:00:00:00:00:02"]
    assert "BAD" in res.failed
    assert gen.macs() == {"02:00:00:00:00:0a", "02:00:00:00:00:0b"}
    assert (tftp_root / "pxelinux.cfg" / "default").exists()
    assert (tftp_root / "grub" / "grub.cfg").exists()
    assert "vmlinuz-rocky-9" in (tftp_root / "pxelinux.cfg/01-02-00-00-00-00-0b").read_text()


def test_defaults_localboot_and_discovery(tftp_root: Path) -> None:
    lb = make_gen(tftp_root).render_defaults()
    assert "LOCALBOOT 0" in lb["pxelinux"] and "exit" in lb["grub"] and "exit" in lb["ipxe"]
    d = make_gen(
        tftp_root,
        default_action="discovery",
        discovery={"kernel_path": "kernels/vmlinuz-disc", "kernel_params": "quiet"},
    ).render_defaults()
    pxe = dict(parse_pxelinux(d["pxelinux"]))
    assert pxe["kernel"] == "kernels/vmlinuz-disc"
    assert f"regional_url={URL}" in pxe["append"] and "discovery=true" in pxe["append"]
    assert "agent_token" not in pxe["append"]
    assert "linux /kernels/vmlinuz-disc" in d["grub"]


def test_operator_templates_override_per_os(tftp_root: Path, tmp_path: Path) -> None:
    tdir = tmp_path / "templates"
    (tdir / "pxelinux").mkdir(parents=True)
    (tdir / "pxelinux" / "rocky.j2").write_text(
        "DEFAULT rocky\nLABEL rocky\n  KERNEL {{ kernel }}\n"
        "  APPEND initrd={{ initrd }} inst.ks={{ regional_url }}/ks/{{ sn }} {{ kernel_params }}\n"
    )
    g = make_gen(tftp_root, templates_dir=tdir)
    rocky = g.render(BootSpec.from_task(
        task(os_type="rocky", os_version="9")))["pxelinux"]  # fmt: skip
    assert "DEFAULT rocky" in rocky and f"inst.ks={URL}/ks/SN001" in rocky
    ubuntu = g.render(gen_spec())["pxelinux"]  # falls back to the built-in template
    assert "DEFAULT linux" in ubuntu
    (tdir / "pxelinux" / "broken.j2").write_text("{% if %}")
    with pytest.raises(ConfigError):
        g.generate(task(os_type="broken"))


def test_atomic_write_keeps_old_file_on_failure(
    gen: PxeGenerator, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = gen.generate(task())
    old = paths[0].read_text()

    def boom(*a: object, **k: object) -> None:  # a full disk, without filling one
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError):
        gen.generate(task(hostname="node9"))
    assert paths[0].read_text() == old
    assert not [p for p in gen.root.rglob(".*")]


def test_config_dirs_must_be_inside_root(tftp_root: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        make_gen(tftp_root, config_dir=tmp_path / "elsewhere")
