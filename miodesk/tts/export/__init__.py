"""Building ONNX graphs of MioCodec from its weights. The constants the runtime checks live here, apart from
the builders, so that loading a graph never imports `onnx` (0.6 s at start-up, mostly ml_dtypes)."""

EXPORTER_VERSION = "1"
# Graph metadata that marks a MioDesk decoder graph (checked before a session is opened).
GRAPH_KIND = "miodesk.miocodec.decoder"
