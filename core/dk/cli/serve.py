"""``dk serve``: an HTTP worker (OIP v2 and ``POST /inference``) in front of one engine."""

from __future__ import annotations

from typing import Any

import click


@click.command()
@click.option("--plugin", "-p", required=True, envvar="DK_SERVE_PLUGIN", show_envvar=True,
              help="The plugin whose engine serves the artifact (see 'dk doctor').")
@click.option("--artifact", type=click.Path(file_okay=False), envvar="DK_SERVE_ARTIFACT", show_envvar=True,
              help="Artifact folder to serve (default: the plugin's fp32 export of the embedded model).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; loopback unless told.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="0 picks a free port.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda[:N], tensorrt, ...")
@click.option("--option", "-o", "plugin_options", multiple=True, metavar="KEY=VALUE",
              help="Engine load option of the plugin (repeatable).")
@click.option("--name", "--model_name", "model_name", envvar="DK_SERVE_NAME", show_envvar=True,
              help="Model name in /v2/models/NAME (default: the manifest's model name); --model_name is "
                   "KServe's spelling, which it reads from a custom predictor's args.")
@click.option("--max-body", default="64MiB", show_default=True, help="Largest request body (413 beyond it).")
@click.option("--max-batch", type=click.IntRange(1), default=1, show_default=True,
              help="Dynamic batching: merge concurrent requests up to this batch size (dynamic batch axis only).")
@click.option("--max-delay-ms", type=click.FloatRange(0), default=2.0, show_default=True,
              help="Dynamic batching: longest wait for more requests to join a batch.")
@click.option("--concurrency", type=click.IntRange(1), default=1, show_default=True,
              help="Engine calls that may run at the same time (worker threads).")
@click.option("--allow-upload", is_flag=True, help="Enable the ONNX upload endpoint (off by default).")
@click.option("--store", type=click.Path(file_okay=False), default="dk-artifacts", show_default=True,
              help="Artifact store that uploads are written into (under uploads/).")
@click.option("--max-upload", default="256MiB", show_default=True, help="Largest uploaded model.")
@click.option("--header-timeout", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True,
              help="Seconds a client may take to send a request's headers (then 408 and close).")
@click.option("--body-timeout", type=click.FloatRange(min=0, min_open=True), default=30.0, show_default=True,
              help="Seconds a client may take to send a request's body (then 408 and close); for a model "
                   "upload, the longest pause in its body.")
@click.option("--max-connections", type=click.IntRange(1), default=1000, show_default=True,
              help="Open connections at most (one more is answered 503 and closed).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info",
              show_default=True, help="uvicorn's log level (info shows each request).")
@click.option("--stop-grace", type=click.FloatRange(1), default=25.0, show_default=True, envvar="DK_SERVE_STOP_GRACE",
              show_envvar=True, help="Seconds from SIGINT/SIGTERM to exit, whatever the moment: in-flight requests "
                                     "get up to 80% of it (20 s at most); past it, exit status 1.")
def serve(plugin: str, artifact: str | None, host: str, port: int, device: str, plugin_options: tuple[str, ...],
          model_name: str | None, **kw: Any) -> None:
    """Serve an artifact over HTTP until Ctrl-C or SIGTERM (in-flight requests finish first, see docs/serving.md).

    \b
    POST /inference                   raw JPEG/PNG -> results with pre/infer/post timings
    POST /v2/models/NAME/infer        Open Inference Protocol v2 (KServe/Triton), JSON or binary
    GET  /v2/models/NAME              model metadata;  GET /v2/health/live|ready
    GET  /metrics                     Prometheus text: requests, errors, latency histogram
    """
    from dk.cli.render import note
    from dk.serve.server import StopSignals

    with StopSignals(kw["stop_grace"]) as signals:  # before anything is loaded or announced
        _serve(signals, plugin, artifact, host, port, device, plugin_options, model_name, kw)
        if signals.stopping:
            note(f"dk serve stopped ({signals.signal_name})")


def _serve(signals: Any, plugin: str, artifact: str | None, host: str, port: int, device: str,
           plugin_options: tuple[str, ...], model_name: str | None, kw: dict[str, Any]) -> None:
    from dk.serve import require_serve_dependencies

    require_serve_dependencies()  # each start-up step ends early once a stop signal came
    from dk import api, pipeline
    from dk.artifacts import Artifact
    from dk.cli.options import check_option_scopes, parse_key_values
    from dk.cli.render import note
    from dk.errors import UsageError
    from dk.serve.app import ModelInfo, create_app
    from dk.serve.config import ServeConfig, parse_size
    from dk.serve.server import GRACEFUL_SHUTDOWN_S, listening_socket, make_server

    config = ServeConfig(
        max_body=parse_size(kw["max_body"], "--max-body"), max_batch=kw["max_batch"],
        max_delay_ms=kw["max_delay_ms"], concurrency=kw["concurrency"], allow_upload=kw["allow_upload"],
        store=kw["store"], max_upload=parse_size(kw["max_upload"], "--max-upload"),
        header_timeout_s=kw["header_timeout"], body_timeout_s=kw["body_timeout"], max_connections=kw["max_connections"],
    )
    options = parse_key_values(plugin_options)
    check_option_scopes(options, [plugin])
    config.device, config.engine_options = device, options
    if signals.stopping:
        return
    engine = app = None
    try:
        built = Artifact.load(artifact) if artifact else pipeline.build(plugin, "fp32", pipeline.BuildOptions(device=device))
        if signals.stopping:
            return
        engine = api.load_engine(plugin, built, device, options)
        if signals.stopping:
            return
        model = ModelInfo.from_artifact(built, plugin, model_name)
        config.model_name = model.name
        app = create_app(engine, config, model)
        try:
            sock = listening_socket(host, port)
        except OSError as exc:
            raise UsageError(f"--host/--port: cannot listen on {host}:{port} ({exc.strerror or exc})") from None
        bound = sock.getsockname()[1]

        def announce() -> None:  # once uvicorn accepts connections
            note(f"serving model {model.name!r} ({plugin}, {built.precision}) on http://{host}:{bound} "
                 f"- POST /inference, /v2/models/{model.name}/infer; Ctrl-C stops after in-flight requests")
            if config.allow_upload:
                note("[yellow]note:[/] --allow-upload: ONNX uploads are accepted into the store's uploads/ folder")

        server = make_server(app, host, bound, log_level=kw["log_level"], access_log=kw["log_level"] in ("debug", "info"),
                             on_started=announce, drain_s=min(GRACEFUL_SHUTDOWN_S, 0.8 * kw["stop_grace"]))
        signals.attach(server)
        try:
            server.run(sockets=[sock])
        finally:
            sock.close()
    finally:  # the app's lifespan closed the engine unless start-up failed or a second signal forced the exit
        runner = getattr(app.state.worker, "runner", None) if app is not None else None
        if runner is not None:
            runner.close()  # waits for running engine calls, then closes the engine; safe to call twice
        elif engine is not None:
            engine.close()
