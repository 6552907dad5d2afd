"""Errors whose message is meant for the user: the CLI and the UI show them as one line."""


class MioDeskError(Exception):
    """A problem the user can act on; `str(error)` is the whole message."""


class ModelError(MioDeskError):
    """A missing, corrupt or unsuitable model file (GGUF, codec folder, ONNX graph)."""


class VoiceError(MioDeskError):
    """A voice file or voice name that cannot be used."""


class TextError(MioDeskError):
    """Text that cannot be spoken as given (empty, too long)."""


class GenerationError(MioDeskError):
    """The speech model did not produce usable speech (e.g. it never stopped)."""


class DocumentError(MioDeskError):
    """A file that cannot be opened as a document; the message names the file and the reason."""


class DownloadError(MioDeskError):
    """A model download that failed (network, offline mode, checksum, disk full); says what to do."""


class VoiceRecordingError(VoiceError):
    """The microphone cannot be used (missing, busy, permission denied) or a recording is unusable."""
