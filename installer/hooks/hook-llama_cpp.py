# PyInstaller hook (installer/miodesk.spec puts this folder on hookspath).
# llama_cpp opens llama.cpp's shared libraries with ctypes from llama_cpp/lib, which PyInstaller's
# import analysis cannot see: collect them there (CPU, CUDA, Metal or Vulkan, whatever this build has).
from PyInstaller.utils.hooks import collect_dynamic_libs

binaries = collect_dynamic_libs("llama_cpp")
