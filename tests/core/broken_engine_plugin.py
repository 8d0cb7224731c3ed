"""A test engine plugin ``broken``: ONNX Runtime with exactly one node's output perturbed on purpose.

``-o broken:node=NAME`` names the node; its first output gets ``offset`` (default 0.5) added, in
every graph the plugin builds, marked or cut. ``-o broken:first_output_only=1`` makes the engine
answer only the model's first output, like a remote worker that ignores marked outputs. ``DK_TEST_BLOCK_FILE=PATH`` makes the second export
write PATH, print ``broken: blocked`` on stderr and block (until Ctrl-C), so a test can interrupt
``dk debug diverge`` mid-bisection.
"""

from dk.hooks import hookimpl

EXPORTS = []


@hookimpl
def dk_describe(probe):
    from dk.specs import PluginInfo

    return PluginInfo(name="broken", kind="engine", formats_in=["onnx"], formats_out=["onnx"], precisions=["fp32"])


@hookimpl
def dk_export(request):
    import os
    import time
    from pathlib import Path

    import attrs
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    from dk.plugins import get_plugin_manager
    from dk.sources import resolve_onnx
    from dk.specs import ModelSource

    EXPORTS.append(request.source.location)
    block = os.environ.get("DK_TEST_BLOCK_FILE")
    if block and len(EXPORTS) == 2:
        import sys

        Path(block).write_text("blocked\n")
        print("broken: blocked", file=sys.stderr, flush=True)
        while True:
            time.sleep(3600)  # until the test's SIGINT
    name = request.options["node"]
    offset = float(request.options.get("offset", "0.5"))
    model = onnx.load(str(resolve_onnx(request.source).path))
    nodes = list(model.graph.node)
    position = next((i for i, n in enumerate(nodes) if n.name == name), None)
    if position is not None:  # a prefix subgraph may end before the broken node
        target = nodes[position]
        tensor = target.output[0]
        target.output[0] = tensor + "__unbroken"
        model.graph.initializer.append(numpy_helper.from_array(np.array(offset, dtype=np.float32), "__broken_offset"))
        nodes.insert(position + 1, helper.make_node("Add", [tensor + "__unbroken", "__broken_offset"], [tensor],
                                                    name="__broken"))
        del model.graph.node[:]
        model.graph.node.extend(nodes)
    folder = Path(request.out_dir) / "broken-sources"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{Path(request.source.location).stem}-broken-{len(EXPORTS)}.onnx"
    onnx.save(model, str(path))
    model = nodes = target = None  # ort loads the file itself: holding this copy too would add to every build's peak
    ort_request = attrs.evolve(request, source=ModelSource("onnx", str(path)), options={})
    return get_plugin_manager().call_stage("ort", "export", request=ort_request)


@hookimpl
def dk_load_engine(artifact, device, options):
    from dk.engine import Engine
    from dk.plugins import get_plugin_manager

    engine = get_plugin_manager().call_stage("ort", "load", artifact=artifact, device=device, options={})
    if options.get("first_output_only") != "1":
        return engine

    class FirstOutputOnly(Engine):
        inputs, outputs = engine.inputs, engine.outputs[:1]

        def infer(self, feeds):
            name = engine.outputs[0].name
            return {name: engine.infer(feeds)[name]}

        def close(self):
            engine.close()

    return FirstOutputOnly()
