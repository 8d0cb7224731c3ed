"""``dk doctor``: which plugins are installed, which work here, and why not."""

from __future__ import annotations

import click


def gather(probe: bool) -> dict:
    """One JSON-ready report of every plugin, loaded or broken."""
    import platform
    import sys

    from dk import __version__, api
    from dk.bench.environment import cpu_model
    from dk.cpu_isa import isa_record
    from dk.plugins import OK, get_plugin_manager

    manager = get_plugin_manager()
    plugins = []
    for record in manager.load_all():
        entry = {
            "name": record.name,
            "module": record.module,
            "distribution": record.distribution,
            "version": record.version,
            "status": record.status,
            "error": record.error,
        }
        if record.status == OK:
            try:
                info = api.describe(record.name, probe=probe)
            except Exception as exc:  # a plugin's describe must not break doctor
                entry.update(status="import-error", error=f"dk_describe raised {type(exc).__name__}: {exc}")
            else:
                entry.update(
                    kind=info.kind,
                    formats_in=info.formats_in,
                    formats_out=info.formats_out,
                    precisions=info.precisions,
                    devices=info.devices,
                    available=info.available,
                    versions=info.versions,
                    details=info.details,
                )
                if not info.available:
                    entry.update(status=info.status if info.status != OK else "unavailable", error=info.reason)
        plugins.append(entry)
    return {
        "dk": __version__,
        "python": sys.version.split()[0],
        "platform": f"{platform.system()} {platform.machine()}",
        "cpu": {"model": cpu_model(), **isa_record()},
        "probe": probe,
        "plugins": plugins,
    }


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option("--probe", is_flag=True, help="Import engine libraries and list real devices (slower).")
@click.option("--ray-resources", is_flag=True,
              help="Print the 'ray start --resources=...' argument that advertises this machine's fleet targets.")
def doctor(as_json: bool, probe: bool, ray_resources: bool) -> None:
    """List installed plugins: status, formats, precisions, devices, and why one is unavailable."""
    if ray_resources:
        return _print_ray_resources(as_json)
    report = gather(probe)
    if as_json:
        from dk.cli.render import print_json

        print_json(report)
        return
    from dk.cli.render import doctor_table

    doctor_table(report)


def _print_ray_resources(as_json: bool) -> None:
    """This machine's target tags as Ray custom resources (``dk-target:TAG``), one cell at a time each."""
    from dk.bench.targets import local_targets, ray_resources, ray_start_argument
    from dk.plugins import get_plugin_manager

    tags = local_targets(get_plugin_manager())
    if as_json:
        from dk.cli.render import print_json

        print_json({"targets": tags, "resources": ray_resources(tags), "ray_start": ray_start_argument(tags)})
        return
    click.echo(ray_start_argument(tags))
