<#
.SYNOPSIS
  Build MioDesk for Windows: the frozen folder dist\MioDesk and the Inno Setup installer.

.DESCRIPTION
  One command, from the repository root, in PowerShell 5.1 or 7:

    powershell -ExecutionPolicy Bypass -File installer\build.ps1                 # standard (CPU + DirectML)
    powershell -ExecutionPolicy Bypass -File installer\build.ps1 -Variant cuda   # NVIDIA build

  It creates a build environment build\venv-<variant> with MioDesk and the runtime of that variant,
  freezes it with PyInstaller (installer\miodesk.spec) into dist\MioDesk (MioDesk.exe without a
  console, miodesk-cli.exe with one), and compiles installer\windows\miodesk.iss with Inno Setup 6
  into dist\MioDesk-<version>-windows-x64-<variant>-setup.exe.

  Needs: Python 3.10-3.12 x64 (the `py` launcher or -Python), Inno Setup 6 (ISCC.exe; -NoInstaller
  skips it). llama-cpp-python comes as a prebuilt wheel from its project's index (CPU, or CUDA 12.x
  for -Variant cuda) when that index has a new enough one, else it is compiled from source, which
  needs the Visual Studio Build Tools (C++); set -LlamaIndex to fetch another build.
  CI (.github/workflows/ci.yml) runs it through installer\ci\build.py.
  Signing (optional): -SignCommand 'signtool sign /fd sha256 /tr http://timestamp.digicert.com /td sha256 /sha1 <thumbprint> $f'
  signs MioDesk.exe, miodesk-cli.exe, the setup and the uninstaller (installer\README.md).
  UNTESTED: written on Linux without a Windows machine; see installer\README.md.
#>
param(
  [ValidateSet("standard", "cuda")] [string] $Variant = "standard",
  [string] $Python = "",
  [string] $Iscc = "",
  [string] $LlamaIndex = "",
  [string] $SignCommand = "",
  [switch] $NoInstaller
)

$ErrorActionPreference = "Stop"
Set-StrictMode -Version Latest

$Root = Split-Path -Parent $PSScriptRoot
Set-Location $Root

function Invoke-Checked {
  param([string] $Exe, [string[]] $Arguments)
  & $Exe @Arguments
  if ($LASTEXITCODE -ne 0) { throw "$Exe $($Arguments -join ' ') failed with exit code $LASTEXITCODE" }
}

# --- build environment (one per variant, so the two builds never mix their onnxruntime) -----------
$Venv = Join-Path $Root "build\venv-$Variant"
$VenvPython = Join-Path $Venv "Scripts\python.exe"
if (-not (Test-Path $VenvPython)) {
  if ($Python) { Invoke-Checked $Python @("-m", "venv", $Venv) }
  else { Invoke-Checked "py" @("-3", "-m", "venv", $Venv) }
}
Invoke-Checked $VenvPython @("-m", "pip", "install", "-q", "--upgrade", "pip")

if (-not $LlamaIndex) {
  if ($Variant -eq "cuda") { $LlamaIndex = "https://abetlen.github.io/llama-cpp-python/whl/cu124" }
  else { $LlamaIndex = "https://abetlen.github.io/llama-cpp-python/whl/cpu" }
}
# One pip call, so that llama-cpp-python meets MioDesk's own version floor: a prebuilt wheel from
# $LlamaIndex when it has one that new, else pip compiles it from PyPI's source (MSVC; pip's wheel cache
# keeps the result, so it compiles once per version).
Invoke-Checked $VenvPython @("-m", "pip", "install", "-q", "--prefer-binary", "--extra-index-url", $LlamaIndex,
  "-e", ".", "pyinstaller")

if ($Variant -eq "standard") {
  # The package metadata asks for onnxruntime-gpu on x64 Windows; the standard build runs the codec
  # with DirectML (any DirectX 12 GPU) or the CPU instead. All builds provide the same `onnxruntime`.
  Invoke-Checked $VenvPython @("-m", "pip", "uninstall", "-q", "-y", "onnxruntime-gpu", "onnxruntime")
  Invoke-Checked $VenvPython @("-m", "pip", "install", "-q", "onnxruntime-directml")
  Remove-Item Env:MIODESK_KEEP_CUDA_EP -ErrorAction SilentlyContinue
} else {
  # CUDA and cuDNN come as pip wheels and travel in the folder (about 2 GB); see installer\README.md.
  Invoke-Checked $VenvPython @("-m", "pip", "install", "-q", "onnxruntime-gpu[cuda,cudnn]")
  $env:MIODESK_KEEP_CUDA_EP = "1"
}

# --- freeze ---------------------------------------------------------------------------------------
$Version = (& $VenvPython installer\package_info.py).Trim()
$Numeric = (& $VenvPython installer\package_info.py $Version).Trim()
Write-Host "build.ps1: freezing MioDesk $Version ($Variant)"
$Started = Get-Date
Invoke-Checked $VenvPython @("-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
  "--distpath", "dist", "--workpath", "build", "installer\miodesk.spec")
$Folder = Join-Path $Root "dist\MioDesk"
$SizeMB = [math]::Round(((Get-ChildItem $Folder -Recurse -File | Measure-Object Length -Sum).Sum) / 1MB)
Write-Host "build.ps1: $Folder ($SizeMB MB) in $([math]::Round(((Get-Date) - $Started).TotalSeconds)) s"
Invoke-Checked (Join-Path $Folder "miodesk-cli.exe") @("--version")

if ($NoInstaller) { exit 0 }

# --- installer ------------------------------------------------------------------------------------
if (-not $Iscc) {
  $Candidates = @(
    (Join-Path ${env:ProgramFiles(x86)} "Inno Setup 6\ISCC.exe"),
    (Join-Path $env:ProgramFiles "Inno Setup 6\ISCC.exe"),
    (Join-Path $env:LOCALAPPDATA "Programs\Inno Setup 6\ISCC.exe")
  )
  $Iscc = ($Candidates | Where-Object { $_ -and (Test-Path $_) } | Select-Object -First 1)
  if (-not $Iscc) { $Iscc = (Get-Command ISCC.exe -ErrorAction SilentlyContinue).Source }
  if (-not $Iscc) { throw "Inno Setup 6 (ISCC.exe) not found: install it from jrsoftware.org or pass -Iscc" }
}
$IsccArgs = @(
  "/DAppVersion=$Version", "/DNumericVersion=$Numeric", "/DVariant=$Variant",
  "/DSourceDir=$Folder", "/DIconFile=$(Join-Path $Root 'build\miodesk\icons\miodesk.ico')",
  "/DOutputDir=$(Join-Path $Root 'dist')"
)
if ($SignCommand) { $IsccArgs += @("/Smiodesksign=$SignCommand", "/DSignTool=miodesksign") }
Invoke-Checked $Iscc ($IsccArgs + @("installer\windows\miodesk.iss"))
Write-Host "build.ps1: dist\MioDesk-$Version-windows-x64-$Variant-setup.exe"
