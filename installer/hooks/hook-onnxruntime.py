# PyInstaller hook (installer/miodesk.spec puts this folder on hookspath; replaces the contrib hook).
# onnxruntime's providers are shared libraries in onnxruntime/capi. MioDesk's default build leaves out
# the CUDA and TensorRT providers (about 285 MB, and they need CUDA + cuDNN on the user's machine);
# MIODESK_KEEP_CUDA_EP=1 keeps them. DirectML (Windows, onnxruntime-directml) and CoreML (macOS) are
# built into the main library or come as small DLLs and always stay, and so does the tiny
# providers_shared library (without it onnxruntime warns "Init provider bridge failed" at every start).
import os
import re

from PyInstaller.utils.hooks import collect_dynamic_libs

_GPU_ONLY = re.compile(r"onnxruntime_providers_(cuda|tensorrt|migraphx|rocm|openvino)", re.IGNORECASE)

binaries = collect_dynamic_libs("onnxruntime")
if os.environ.get("MIODESK_KEEP_CUDA_EP", "") != "1":
    binaries = [(src, dest) for src, dest in binaries if not _GPU_ONLY.search(os.path.basename(src))]
else:
    # The CUDA build (Windows installer variant "cuda", untested): the CUDA and cuDNN libraries from the
    # nvidia-* wheels (`pip install onnxruntime-gpu[cuda,cudnn]`) go to the top folder, which is on the
    # frozen app's library search path, so the CUDA provider finds them without a system CUDA install.
    try:
        binaries += [(src, ".") for src, _dest in collect_dynamic_libs("nvidia")]
    except Exception:  # no nvidia-* wheels: the provider uses the system's CUDA and cuDNN
        pass
