"""Checks of the installer scripts that need no Windows or Mac: the Inno Setup script (parsed here, since
ISCC only runs on Windows), the Linux .desktop entry, the shell scripts, the icons and version data.

The .iss checker reads the script the way ISCC does, section by section: [Setup] directives and their
values, `Name: value; Name: "value"` entries with the parameters and flags each section knows, Inno
constants, custom messages, tasks, ISPP `#define`/`#ifdef` lines and `{#Name}` uses, the [Code]
Pascal's begin/end and brackets, the Source files against what the frozen build produces, and the
per-user promise (no machine-wide locations when PrivilegesRequired=lowest). Broken copies of the
script prove that each check catches its typo.
"""

from __future__ import annotations

import ast
import importlib
import plistlib
import re
import shutil
import struct
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import REPO_ROOT

from miodesk import desktop_entry

INSTALLER = REPO_ROOT / "installer"
ISS = INSTALLER / "windows" / "miodesk.iss"
sys.path.insert(0, str(INSTALLER))
import package_info  # noqa: E402

# --- what Inno Setup 6 knows -----------------------------------------------------------------------------
SECTIONS = {"Setup", "Types", "Components", "Tasks", "Dirs", "Files", "Icons", "INI", "InstallDelete", "Languages",
            "Messages", "CustomMessages", "LangOptions", "Registry", "Run", "UninstallDelete", "UninstallRun", "Code"}
SETUP_DIRECTIVES = set("""
ASLRCompatible Compression CompressionThreads DEPCompatible DiskClusterSize DiskSliceSize DiskSpanning Encryption
EncryptionKeyDerivation InternalCompressLevel LZMAAlgorithm LZMABlockSize LZMADictionarySize LZMAMatchFinder
LZMANumBlockThreads LZMANumFastBytes LZMAUseSeparateProcess MergeDuplicateFiles MissingMessagesWarning
NotRecognizedMessagesWarning OutputBaseFilename OutputDir OutputManifestFile ReserveBytes SignedUninstaller
SignedUninstallerDir SignTool SignToolMinimumTimeBetween SignToolRetryCount SignToolRetryDelay SignToolRunMinimized
SlicesPerDisk SolidCompression SourceDir TerminalServicesAware UsedUserAreasWarning UseSetupLdr VersionInfoCompany
VersionInfoCopyright VersionInfoDescription VersionInfoOriginalFileName VersionInfoProductName
VersionInfoProductTextVersion VersionInfoProductVersion VersionInfoTextVersion VersionInfoVersion
AllowCancelDuringInstall AllowNetworkDrive AllowNoIcons AllowRootDirectory AllowUNCPath AlwaysRestart
AlwaysShowComponentsList AlwaysShowDirOnReadyPage AlwaysShowGroupOnReadyPage AlwaysUsePersonalGroup
AppendDefaultDirName AppendDefaultGroupName AppComments AppContact AppCopyright AppId AppModifyPath AppMutex AppName
AppPublisher AppPublisherURL AppReadmeFile AppSupportPhone AppSupportURL AppUpdatesURL AppVerName AppVersion
ArchitecturesAllowed ArchitecturesInstallIn64BitMode ChangesAssociations ChangesEnvironment CloseApplications
CloseApplicationsFilter CloseApplicationsFilterExcludes CreateAppDir CreateUninstallRegKey DefaultDialogFontName
DefaultDirName DefaultGroupName DefaultUserInfoName DefaultUserInfoOrg DefaultUserInfoSerial DirExistsWarning
DisableDirPage DisableFinishedPage DisableProgramGroupPage DisableReadyMemo DisableReadyPage DisableStartupPrompt
DisableWelcomePage EnableDirDoesntExistWarning ExtraDiskSpaceRequired InfoAfterFile InfoBeforeFile
LanguageDetectionMethod LicenseFile MinVersion OnlyBelowVersion Password PrivilegesRequired
PrivilegesRequiredOverridesAllowed RestartApplications RestartIfNeededByRun SetupLogging SetupMutex
ShowLanguageDialog ShowUndisplayableLanguages TimeStampRounding TimeStampsInUTC TouchDate TouchTime Uninstallable
UninstallDisplayIcon UninstallDisplayName UninstallDisplaySize UninstallFilesDir UninstallLogMode
UninstallRestartComputer UpdateUninstallLogAppName UsePreviousAppDir UsePreviousGroup UsePreviousLanguage
UsePreviousPrivileges UsePreviousSetupType UsePreviousTasks UsePreviousUserInfo UserInfoPage BackColor BackColor2
BackColorDirection BackSolid FlatComponentsList SetupIconFile ShowComponentSizes ShowTasksTreeLines WindowResizable
WindowShowCaption WindowStartMaximized WindowVisible WizardImageAlphaFormat WizardImageFile WizardImageStretch
WizardResizable WizardSizePercent WizardSmallImageFile WizardStyle
""".split())
BOOLEAN_DIRECTIVES = {"ChangesAssociations", "SolidCompression", "DisableProgramGroupPage", "SignedUninstaller",
                      "RestartApplications", "CreateAppDir", "Uninstallable", "AllowNoIcons", "SetupLogging",
                      "DisableWelcomePage", "DisableReadyPage", "UsePreviousTasks", "ChangesEnvironment"}
DIRECTIVE_VALUES = {
    "PrivilegesRequired": {"admin", "lowest", "poweruser", "none"},
    "WizardStyle": {"classic", "modern"},
    "ShowLanguageDialog": {"yes", "no", "auto"},
    "CloseApplications": {"yes", "no", "force"},
    "DisableDirPage": {"yes", "no", "auto"},
}
REQUIRED_DIRECTIVES = {"AppId", "AppName", "AppVersion", "DefaultDirName", "PrivilegesRequired", "OutputBaseFilename"}

COMMON_PARAMS = {"Languages", "MinVersion", "OnlyBelowVersion", "Check", "BeforeInstall", "AfterInstall",
                 "Components", "Tasks"}
ENTRY_SECTIONS: dict[str, tuple[set[str], set[str], set[str]]] = {  # parameters, required, flags
    "Files": ({"Source", "DestDir", "DestName", "Excludes", "ExternalSize", "Attribs", "Permissions", "FontInstall",
               "StrongAssemblyName", "Flags"} | COMMON_PARAMS, {"Source", "DestDir"}, set("""
        32bit 64bit allowunsafefiles comparetimestamp confirmoverwrite createallsubdirs deleteafterinstall dontcopy
        dontverifychecksum external fontisnttruetype gacinstall ignoreversion isreadme nocompression noencryption
        noregerror onlyifdestfileexists onlyifdoesntexist overwritereadonly promptifolder recursesubdirs regserver
        regtypelib replacesameversion restartreplace setntfscompression sharedfile sign signcheck signonce
        skipifsourcedoesntexist solidbreak sortfilesbyextension sortfilesbyname touch uninsnosharedfileprompt
        uninsremovereadonly uninsrestartdelete uninsneveruninstall unsetntfscompression""".split())),
    "Icons": ({"Name", "Filename", "Parameters", "WorkingDir", "HotKey", "Comment", "IconFilename", "IconIndex",
               "AppUserModelID", "AppUserModelToastActivatorCLSID", "Flags"} | COMMON_PARAMS, {"Name", "Filename"},
              set("""closeonexit createonlyiffileexists dontcloseonexit excludefromshowinnewinstall foldershortcut
              preventpinning runmaximized runminimized uninsneveruninstall useapppaths""".split())),
    "Registry": ({"Root", "Subkey", "ValueType", "ValueName", "ValueData", "Permissions", "Flags"} | COMMON_PARAMS,
                 {"Root", "Subkey"}, set("""createvalueifdoesntexist deletekey deletevalue dontcreatekey noerror
                 preservestringtype uninsclearvalue uninsdeletekey uninsdeletekeyifempty uninsdeletevalue""".split())),
    "Tasks": ({"Name", "Description", "GroupDescription", "Components", "Flags", "Languages", "MinVersion",
               "OnlyBelowVersion", "Check"}, {"Name", "Description"},
              {"checkablealone", "checkedonce", "dontinheritcheck", "exclusive", "restart", "unchecked"}),
    "Run": ({"Filename", "Description", "Parameters", "WorkingDir", "StatusMsg", "RunOnceId", "Verb", "Flags"}
            | COMMON_PARAMS, {"Filename"}, set("""32bit 64bit hidewizard nowait postinstall runascurrentuser
            runasoriginaluser runhidden runmaximized runminimized shellexec skipifdoesntexist skipifnotsilent
            skipifsilent unchecked waituntilidle waituntilterminated logoutput dontlogparameters""".split())),
    "InstallDelete": ({"Type", "Name"} | COMMON_PARAMS, {"Type", "Name"}, set()),
    "UninstallDelete": ({"Type", "Name"} | COMMON_PARAMS, {"Type", "Name"}, set()),
    "Languages": ({"Name", "MessagesFile", "LicenseFile", "InfoBeforeFile", "InfoAfterFile"}, {"Name", "MessagesFile"},
                  set()),
    "Dirs": ({"Name", "Attribs", "Permissions", "Flags"} | COMMON_PARAMS, {"Name"},
             {"deleteafterinstall", "setntfscompression", "uninsalwaysuninstall", "uninsneveruninstall",
              "unsetntfscompression"}),
}
ENTRY_SECTIONS["UninstallRun"] = ENTRY_SECTIONS["Run"]
REGISTRY_ROOTS = {root + suffix for root in ("HKCR", "HKCU", "HKLM", "HKU", "HKCC", "HKA") for suffix in ("", "32", "64")}
VALUE_TYPES = {"none", "string", "expandsz", "multisz", "dword", "qword", "binary"}
DELETE_TYPES = {"files", "filesandordirs", "dirifempty"}
CONSTANTS = set("""
app win sys sysnative syswow64 src sd commonpf commonpf32 commonpf64 commoncf commoncf32 commoncf64 tmp commonfonts
fonts dao dotnet11 dotnet20 dotnet2032 dotnet2064 dotnet40 dotnet4032 dotnet4064 group localappdata userappdata
commonappdata usercf usercf32 usercf64 userdocs commondocs userfavorites userfonts userpf userpf32 userpf64
userprograms commonprograms userstartmenu commonstartmenu userstartup commonstartup userdesktop commondesktop
usertemplates commontemplates usersavedgames autoappdata autocf autocf32 autocf64 autodesktop autodocs autofonts
autopf autopf32 autopf64 autoprograms autostartmenu autostartup autotemplates cmd computername groupname hwnd
wizardhwnd language srcexe uninstallexe sysuserinfoname sysuserinfoorg userinfoname userinfoorg userinfoserial
username log pf pf32 pf64 cf cf32 cf64 sendto \\
""".split())
# locations an installer without administrator rights must not write to
MACHINE_CONSTANTS = {"pf", "pf32", "pf64", "commonpf", "commonpf32", "commonpf64", "commoncf", "commonappdata",
                     "commondesktop", "commonprograms", "commonstartmenu", "commonstartup", "commondocs", "win",
                     "sys", "commonfonts", "fonts"}
BUILTIN_CUSTOM_MESSAGES = {"NameAndVersion", "AdditionalIcons", "CreateDesktopIcon", "CreateQuickLaunchIcon",
                           "ProgramOnTheWeb", "UninstallProgram", "LaunchProgram", "AssocFileExtension",
                           "AssocingFileExtension", "AutoStartProgramGroupDescription", "AutoStartProgram",
                           "AddonHostProgramNotFound"}
INNO_LANGUAGE_FILES = {"Default.isl"} | {f"Languages\\{name}.isl" for name in (
    "Armenian BrazilianPortuguese Bulgarian Catalan Corsican Czech Danish Dutch Finnish French German Hebrew "
    "Hungarian Icelandic Italian Japanese Korean Norwegian Polish Portuguese Russian Slovak Slovenian Spanish "
    "Swedish Tamil Turkish Ukrainian").split()}
ISPP_DIRECTIVES = {"define", "undef", "ifdef", "ifndef", "if", "elif", "else", "endif", "error", "include",
                   "pragma", "emit", "expr", "insert", "for", "sub", "endsub"}
# defines the build passes on ISCC's command line (installer/build.ps1); the rest must be #defined
EXTERNAL_DEFINES = {"AppVersion", "SignTool"}
# [Code] event functions MioDesk may use, with the parameter lists Inno Setup calls them with
EVENT_SIGNATURES = {
    "CurUninstallStepChanged": "(CurUninstallStep: TUninstallStep)",
    "CurStepChanged": "(CurStep: TSetupStep)",
    "InitializeSetup": "(): Boolean",
    "InitializeUninstall": "(): Boolean",
    "NextButtonClick": "(CurPageID: Integer): Boolean",
    "ShouldSkipPage": "(PageID: Integer): Boolean",
}
# what the frozen Windows build puts in dist\MioDesk (installer/miodesk.spec, PyInstaller 6 layout)
FROZEN_WINDOWS_FILES = {f"{name}.exe" for name, _console in package_info.WINDOWS_EXECUTABLES} | {"_internal"}


# --- the checker -------------------------------------------------------------------------------------------
@dataclass
class Entry:
    section: str
    line: int
    params: dict[str, str]
    conditional: bool


@dataclass
class IssScript:
    path: Path
    errors: list[str] = field(default_factory=list)
    defines: dict[str, str] = field(default_factory=dict)
    setup: dict[str, str] = field(default_factory=dict)
    entries: list[Entry] = field(default_factory=list)
    custom_messages: dict[str, set[str]] = field(default_factory=dict)  # name -> languages
    code: list[tuple[int, str]] = field(default_factory=list)

    def error(self, line: int, message: str) -> None:
        self.errors.append(f"{self.path.name}:{line}: {message}")


def parse_params(text: str) -> dict[str, str]:
    """Parse `Name: value; Name: "quoted value"` (a doubled quote is a quote) into a dict.

    Raises ValueError on a malformed list.
    """
    params: dict[str, str] = {}
    pos, n = 0, len(text)
    while pos < n:
        match = re.compile(r"\s*([A-Za-z][A-Za-z0-9]*)\s*:\s*").match(text, pos)
        if not match:
            raise ValueError(f"expected 'Name: value' at {text[pos:pos + 30]!r}")
        name, pos = match.group(1), match.end()
        if name in params:
            raise ValueError(f"parameter {name} given twice")
        if pos < n and text[pos] == '"':
            value, pos = [], pos + 1
            while True:
                if pos >= n:
                    raise ValueError(f"unterminated quoted value of {name}")
                if text[pos] == '"':
                    if pos + 1 < n and text[pos + 1] == '"':
                        value.append('"')
                        pos += 2
                        continue
                    pos += 1
                    break
                value.append(text[pos])
                pos += 1
            params[name] = "".join(value)
            rest = re.compile(r"\s*(;|$)").match(text, pos)
            if not rest:
                raise ValueError(f"text after the quoted value of {name}: {text[pos:pos + 30]!r}")
            pos = rest.end()
        else:
            end = text.find(";", pos)
            end = n if end < 0 else end
            params[name] = text[pos:end].strip()
            if '"' in params[name]:
                raise ValueError(f"stray quote in the value of {name}")
            pos = end + 1
    return params


def constants_in(text: str) -> list[str]:
    """Inno constants in a value: `{app}`, `{cm:Name,arg}`, `{#Define}` ... (`{{` is a literal brace)."""
    found, pos = [], 0
    while True:
        start = text.find("{", pos)
        if start < 0:
            return found
        if text.startswith("{{", start):
            pos = start + 2
            continue
        depth, end = 0, start
        while end < len(text):
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            if depth == 0:
                break
            end += 1
        if depth != 0:
            found.append(text[start:])  # reported as malformed
            return found
        found.append(text[start + 1:end])
        pos = end + 1


def check_constant(script: IssScript, line: int, constant: str) -> None:
    if constant.startswith("#"):
        name = constant[1:].strip()
        if not re.fullmatch(r"[A-Za-z_]\w*", name):
            script.error(line, f"ISPP expression {{#{name}}} is not a plain name")
        elif name not in script.defines and name not in EXTERNAL_DEFINES:
            script.error(line, f"{{#{name}}} is never #defined")
        return
    if constant.startswith("cm:"):
        name = constant[3:].split(",", 1)[0]
        if name not in script.custom_messages and name not in BUILTIN_CUSTOM_MESSAGES:
            script.error(line, f"unknown custom message {{cm:{name}}}")
        for argument in constant[3:].split(",")[1:]:
            for inner in constants_in(argument):
                check_constant(script, line, inner)
        return
    if constant.startswith(("code:", "param:", "reg:", "ini:", "drive:", "%")):
        return
    if constant not in CONSTANTS:
        script.error(line, f"unknown constant {{{constant}}}")


def strip_comment(line: str) -> str:
    return "" if line.lstrip().startswith((";", "//")) else line


def parse_iss(path: Path, source: bytes | None = None) -> IssScript:
    raw = path.read_bytes() if source is None else source
    script = IssScript(path)
    has_bom = raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8-sig")
    if not has_bom and any(ord(char) > 127 for char in text):
        script.error(1, "non-ASCII text without a UTF-8 BOM: ISCC would read it as ANSI (mojibake)")
    lines = text.splitlines()

    # pass 1: preprocessor lines and defines (a name defined anywhere counts, like ISPP's #ifndef guards)
    stack: list[int] = []
    conditional_lines: set[int] = set()
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if stack:
            conditional_lines.add(number)
        if not stripped.startswith("#"):
            continue
        match = re.match(r"#\s*(\w+)\s*(.*)$", stripped)
        if not match or match.group(1) not in ISPP_DIRECTIVES:
            script.error(number, f"unknown preprocessor directive {stripped.split()[0]!r}")
            continue
        directive, argument = match.groups()
        if directive in ("if", "ifdef", "ifndef"):
            if directive != "if" and not re.fullmatch(r"[A-Za-z_]\w*", argument):
                script.error(number, f"#{directive} needs one name, got {argument!r}")
            stack.append(number)
        elif directive in ("else", "elif"):
            if not stack:
                script.error(number, f"#{directive} without #if")
        elif directive == "endif":
            if not stack:
                script.error(number, "#endif without #if")
            else:
                stack.pop()
        elif directive == "define":
            define = re.fullmatch(r'([A-Za-z_]\w*)(?:\s+("(?:[^"]|"")*"|\S+))?', argument)
            if not define:
                script.error(number, f"malformed #define {argument!r}")
            else:
                script.defines[define.group(1)] = (define.group(2) or "").strip('"')
    for number in stack:
        script.error(number, "#if/#ifdef/#ifndef without #endif")

    # pass 2: sections
    section = None
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if stripped.startswith("#"):
            continue
        header = re.fullmatch(r"\[([^\]]+)\]", stripped)
        if header:
            section = header.group(1)
            if section not in SECTIONS:
                script.error(number, f"unknown section [{section}]")
            continue
        if section == "Code":
            script.code.append((number, line))
            continue
        stripped = strip_comment(line).strip()
        if not stripped:
            continue
        if section is None:
            script.error(number, "text before the first [Section]")
        elif section in ("Setup", "LangOptions", "Messages"):
            match = re.fullmatch(r"([A-Za-z][A-Za-z0-9]*)\s*=\s*(.*)", stripped)
            if not match:
                script.error(number, f"expected Directive=value in [{section}]: {stripped!r}")
                continue
            key, value = match.groups()
            if section == "Setup":
                if key not in SETUP_DIRECTIVES:
                    script.error(number, f"unknown [Setup] directive {key}")
                if key in script.setup and number not in conditional_lines:
                    script.error(number, f"[Setup] directive {key} given twice")
                script.setup[key] = value
                for constant in constants_in(value):
                    check_constant(script, number, constant)
                if key in BOOLEAN_DIRECTIVES and value.lower() not in ("yes", "no", "true", "false", "1", "0"):
                    script.error(number, f"{key} must be yes or no, not {value!r}")
                if key in DIRECTIVE_VALUES and value.lower() not in DIRECTIVE_VALUES[key]:
                    script.error(number, f"{key}={value} is not one of {sorted(DIRECTIVE_VALUES[key])}")
        elif section == "CustomMessages":
            match = re.fullmatch(r"(?:(\w+)\.)?([A-Za-z]\w*)\s*=.*", stripped)
            if not match:
                script.error(number, f"expected [lang.]Name=text in [CustomMessages]: {stripped!r}")
                continue
            script.custom_messages.setdefault(match.group(2), set()).add(match.group(1) or "*")
        elif section in ENTRY_SECTIONS:
            try:
                params = parse_params(stripped)
            except ValueError as error:
                script.error(number, f"[{section}]: {error}")
                continue
            script.entries.append(Entry(section, number, params, number in conditional_lines))
    return script


def check_iss(path: Path, source: bytes | None = None) -> list[str]:
    script = parse_iss(path, source)
    languages = {e.params.get("Name") for e in script.entries if e.section == "Languages"}
    tasks = {e.params.get("Name") for e in script.entries if e.section == "Tasks"}
    per_user = script.setup.get("PrivilegesRequired", "").lower() == "lowest"

    for key in ("DefaultDirName", "UninstallFilesDir"):
        machine = [c for c in constants_in(script.setup.get(key, "")) if c in MACHINE_CONSTANTS]
        if per_user and machine:
            script.error(1, f"{key}: {{{machine[0]}}} is a machine-wide location; a per-user install "
                            "(PrivilegesRequired=lowest) must use {auto*}/{user*} constants")
    for name in sorted(REQUIRED_DIRECTIVES - set(script.setup)):
        script.error(1, f"[Setup] lacks {name}")
    app_id = script.defines.get("AppId", "") if script.setup.get("AppId") == "{#AppId}" else script.setup.get("AppId", "")
    if not re.fullmatch(r"\{\{[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}\}", app_id):
        script.error(1, f"AppId must be a fixed GUID written {{{{GUID}} (got {app_id!r})")
    for name, langs in script.custom_messages.items():
        if "*" not in langs and langs != languages:
            script.error(1, f"custom message {name} is not translated for {sorted(languages - langs)}")
        if not langs <= languages | {"*"}:
            script.error(1, f"custom message {name} names an undeclared language: {sorted(langs - languages)}")

    for entry in script.entries:
        allowed, required, flags = ENTRY_SECTIONS[entry.section]
        for name in entry.params:
            if name not in allowed:
                script.error(entry.line, f"[{entry.section}] has no parameter {name}")
        for name in sorted(required - set(entry.params)):
            script.error(entry.line, f"[{entry.section}] entry lacks {name}")
        for flag in entry.params.get("Flags", "").split():
            if flag not in flags:
                script.error(entry.line, f"[{entry.section}] has no flag {flag}")
        for task in re.split(r"[\s,]+", entry.params.get("Tasks", "").replace("not ", "").replace("!", "")):
            if task and task not in tasks:
                script.error(entry.line, f"undeclared task {task}")
        for language in entry.params.get("Languages", "").split():
            if language not in languages:
                script.error(entry.line, f"undeclared language {language}")
        for name, value in entry.params.items():
            if name in ("Flags", "Tasks", "Languages", "Check", "BeforeInstall", "AfterInstall"):
                continue
            if name == "MessagesFile":
                if not value.startswith("compiler:") or value[len("compiler:"):] not in INNO_LANGUAGE_FILES:
                    script.error(entry.line, f"MessagesFile {value!r} is not a file Inno Setup 6 ships")
                continue
            for constant in constants_in(value):
                check_constant(script, entry.line, constant)
                if per_user and constant in MACHINE_CONSTANTS:
                    script.error(entry.line, f"{{{constant}}} is a machine-wide location; a per-user install "
                                             "(PrivilegesRequired=lowest) must use {auto*}/{user*} constants")
        if entry.section == "Registry":
            root = entry.params.get("Root", "")
            if root not in REGISTRY_ROOTS:
                script.error(entry.line, f"unknown registry root {root!r}")
            elif per_user and root.startswith(("HKLM", "HKCR", "HKU")):
                script.error(entry.line, f"{root} needs administrator rights; use HKA (or HKCU) per user")
            if entry.params.get("ValueType", "none") not in VALUE_TYPES:
                script.error(entry.line, f"unknown ValueType {entry.params['ValueType']!r}")
        if entry.section in ("InstallDelete", "UninstallDelete") and entry.params.get("Type") not in DELETE_TYPES:
            script.error(entry.line, f"Type must be one of {sorted(DELETE_TYPES)}")
        if entry.section == "Files":
            check_source(script, entry)
    for directive in ("SetupIconFile",):
        if directive in script.setup:
            check_build_file(script, 1, script.setup[directive])
    check_code(script)
    return script.errors


def expand_defines(script: IssScript, value: str) -> str:
    return re.sub(r"\{#(\w+)\}", lambda m: script.defines.get(m.group(1), m.group(0)), value)


def check_source(script: IssScript, entry: Entry) -> None:
    """A Source is in the frozen folder the build makes ({#SourceDir}), or a file in the repository."""
    source = entry.params.get("Source", "")
    if "{#SourceDir}" in source:
        inside = expand_defines(script, source.split("{#SourceDir}", 1)[1]).lstrip("\\")
        first = inside.split("\\", 1)[0]
        if first not in FROZEN_WINDOWS_FILES and first != "*":
            script.error(entry.line, f"Source {source!r}: the frozen build makes no {first!r} "
                                     f"(it makes {sorted(FROZEN_WINDOWS_FILES)})")
        return
    path = expand_defines(script, source)
    if "{" in path or not (script.path.parent / path.replace("\\", "/")).exists():
        script.error(entry.line, f"Source {source!r} is neither in the frozen folder nor in the repository")


def check_build_file(script: IssScript, line: int, value: str) -> None:
    """Files the build writes (the icon: installer/icons.py into PyInstaller's work folder)."""
    path = expand_defines(script, value).replace("\\", "/")
    produced = {"../../build/miodesk/icons/miodesk.ico"}  # build.ps1: --workpath build, spec: <workpath>/icons
    if path not in produced and not (script.path.parent / path).exists():
        script.error(line, f"{value!r} is neither made by the build nor in the repository")


def pascal_tokens(code: str) -> list[str]:
    """Words and brackets of Pascal code, with comments and strings removed ('' inside strings escapes)."""
    tokens, pos, n = [], 0, len(code)
    while pos < n:
        char = code[pos]
        if code.startswith("//", pos):
            end = code.find("\n", pos)
            pos = n if end < 0 else end
        elif char == "{":
            end = code.find("}", pos)
            if end < 0:
                raise ValueError("unterminated { comment")
            pos = end + 1
        elif code.startswith("(*", pos):
            end = code.find("*)", pos)
            if end < 0:
                raise ValueError("unterminated (* comment")
            pos = end + 2
        elif char == "'":
            end = pos + 1
            while True:
                end = code.find("'", end)
                if end < 0 or code[end:end + 1] == "\n":
                    raise ValueError("unterminated string")
                if code.startswith("''", end):
                    end += 2
                    continue
                break
            if "\n" in code[pos:end]:
                raise ValueError("string runs past the end of its line")
            tokens.append(code[pos:end + 1])
            pos = end + 1
        elif char.isalpha() or char == "_":
            match = re.compile(r"\w+").match(code, pos)
            tokens.append(match.group(0))
            pos = match.end()
        elif char in "()[];":
            tokens.append(char)
            pos += 1
        else:
            pos += 1
    return tokens


def check_code(script: IssScript) -> None:
    if not script.code:
        return
    first_line = script.code[0][0]
    code = "\n".join(line for _, line in script.code)
    try:
        tokens = pascal_tokens(code)
    except ValueError as error:
        script.error(first_line, f"[Code]: {error}")
        return
    depth, brackets = 0, 0
    for token in tokens:
        word = token.lower()
        if word in ("begin", "case", "try", "record"):
            depth += 1
        elif word == "end":
            depth -= 1
            if depth < 0:
                script.error(first_line, "[Code]: an 'end' without its 'begin'")
                return
        elif token in "([":
            brackets += 1
        elif token in ")]":
            brackets -= 1
            if brackets < 0:
                script.error(first_line, "[Code]: a closing bracket without its opening one")
                return
    if depth:
        script.error(first_line, f"[Code]: {depth} 'begin'/'case'/'try' without 'end'")
    if brackets:
        script.error(first_line, "[Code]: unbalanced brackets")
    for index, token in enumerate(tokens[:-2]):
        if token.lower() in ("procedure", "function") and tokens[index + 1] in EVENT_SIGNATURES:
            name = tokens[index + 1]
            declared = re.search(rf"\b{name}\s*(\([^)]*\)\s*(?::\s*\w+)?|:\s*\w+)", code)
            signature = re.sub(r"\s+", " ", declared.group(1)).replace("( )", "()") if declared else ""
            expected = EVENT_SIGNATURES[name]
            if signature.replace(" ", "") != expected.replace(" ", "") and not (
                    expected.startswith("()") and signature.replace(" ", "") == expected[2:].replace(" ", "")):
                script.error(first_line, f"[Code]: event {name}{signature} should be {name}{expected}")
    for name in re.findall(r"CustomMessage\('([^']*)'\)", code):
        if name not in script.custom_messages and name not in BUILTIN_CUSTOM_MESSAGES:
            script.error(first_line, f"[Code]: unknown custom message {name!r}")
    for value in re.findall(r"ExpandConstant\('([^']*)'\)", code):
        for constant in constants_in(value):
            check_constant(script, first_line, constant)


# --- the .iss ---------------------------------------------------------------------------------------------
def test_inno_setup_script_passes_the_checks() -> None:
    assert check_iss(ISS) == []


def test_inno_setup_script_promises() -> None:
    """Per-user, associations that do not take the default unasked, a data question at uninstall."""
    script = parse_iss(ISS)
    assert script.setup["PrivilegesRequired"] == "lowest"
    assert script.setup["DefaultDirName"].startswith("{autopf}\\")
    assert script.setup["ChangesAssociations"] == "yes"
    tasks = {e.params["Name"]: e.params.get("Flags", "") for e in script.entries if e.section == "Tasks"}
    assert "unchecked" in tasks["desktopicon"] and "unchecked" not in tasks["openwith"]
    assert all("unchecked" in tasks[name] for name in ("defaultepub", "defaulttxt"))
    registry = [e.params for e in script.entries if e.section == "Registry"]
    for ext, _mime, _uti, _description in package_info.FILE_TYPES:
        open_with = [r for r in registry if r["Subkey"] == f"Software\\Classes\\.{ext}\\OpenWithProgids"]
        assert open_with and open_with[0]["Tasks"] == "openwith", ext
        default = [r for r in registry if r["Subkey"] == f"Software\\Classes\\.{ext}" and r.get("ValueName") == ""]
        assert default and default[0]["Tasks"].startswith("default"), f".{ext}'s default must wait for its task"
    shortcuts = [e.params for e in script.entries if e.section == "Icons"]
    assert any(s["Name"].startswith("{autoprograms}") for s in shortcuts)
    assert any(s["Name"].startswith("{autodesktop}") and s.get("Tasks") == "desktopicon" for s in shortcuts)
    code = "\n".join(line for _, line in script.code)
    assert "{localappdata}\\MioDesk" in code and "DelTree" in code and "usPostUninstall" in code
    assert "MsgBox" in code and "UninstallSilent" in code


def test_the_build_passes_what_the_script_expects() -> None:
    """build.ps1 → ISCC /D...: every name it passes is one the script reads, and AppVersion is among them."""
    build = (INSTALLER / "build.ps1").read_text(encoding="utf-8")
    passed = set(re.findall(r'"/D(\w+)=', build))
    script = parse_iss(ISS)
    used = set(re.findall(r"\{#(\w+)\}", ISS.read_text(encoding="utf-8-sig"))) | {"SignTool"}
    assert "AppVersion" in passed and passed <= used | set(script.defines), passed - used
    assert "--workpath\", \"build\"" in build  # where the .iss finds the icon: build\miodesk\icons
    assert f'"{package_info.WINDOWS_EXECUTABLES[1][0]}.exe"' in build or "miodesk-cli.exe" in build
    assert script.defines["AppExe"] == f"{package_info.WINDOWS_EXECUTABLES[0][0]}.exe"
    assert script.defines["CliExe"] == f"{package_info.WINDOWS_EXECUTABLES[1][0]}.exe"


def test_the_ci_install_check_matches_the_script(monkeypatch: pytest.MonkeyPatch) -> None:
    """installer/ci/smoke_install.py installs and uninstalls on the hosted Windows runner: it must find
    this script's AppId (its uninstall entry) and pass the switch that [Code] reads to remove the data."""
    monkeypatch.syspath_prepend(str(INSTALLER / "ci"))
    smoke_install = importlib.import_module("smoke_install")
    script = parse_iss(ISS)
    assert "{" + smoke_install.app_id() == script.defines["AppId"]
    code = "\n".join(line for _, line in script.code)
    assert "{param:REMOVEUSERDATA|0}" in code
    assert '"/REMOVEUSERDATA=1"' in (INSTALLER / "ci" / "smoke_install.py").read_text(encoding="utf-8")
    # where it looks for the program and the shortcut: the per-user defaults of the script
    assert script.setup["DefaultDirName"] == "{autopf}\\{#AppName}" and script.defines["AppName"] == "MioDesk"
    assert any(e.params["Name"] == "{autoprograms}\\{#AppName}" for e in script.entries if e.section == "Icons")


BROKEN_COPIES = [
    ("[Setup]", "[Setpu]", "unknown section"),
    ("PrivilegesRequired=lowest", "PrivilegesRequired=lowset", "PrivilegesRequired=lowset"),
    ("PrivilegesRequired=lowest", "PrivilegesRequried=lowest", "unknown [Setup] directive"),
    ("Source: \"{#SourceDir}\\_internal\\*\"", "Sourc: \"{#SourceDir}\\_internal\\*\"", "has no parameter Sourc"),
    ("recursesubdirs", "recursesubdir", "has no flag recursesubdir"),
    ('ValueData: "{app}\\{#AppExe},0"', 'ValueData: "{ap}\\{#AppExe},0"', "unknown constant {ap}"),
    ("Tasks: desktopicon", "Tasks: desktopicn", "undeclared task desktopicn"),
    ("{cm:AssocOpenWith}", "{cm:AssocOpenWth}", "unknown custom message"),
    ("{#AppExe}", "{#AppExee}", "never #defined"),
    ("#endif\n", "\n", "without #endif"),
    ("#ifdef SignTool", "#ifdfe SignTool", "unknown preprocessor directive"),
    ("AppId={#AppId}\n", "", "lacks AppId"),
    ('#define AppId "{{B0224F7F', '#define AppId "{B0224F7F', "fixed GUID"),
    ('""{app}\\{#AppExe}"" ""%1"""', '""{app}\\{#AppExe}"" ""%1""', "unterminated quoted value"),
    ("DefaultDirName={autopf}", "DefaultDirName={pf}", "machine-wide location"),
    ("Root: HKA; Subkey: \"Software\\Classes\\.txt\\OpenWithProgids\"",
     "Root: HKLM; Subkey: \"Software\\Classes\\.txt\\OpenWithProgids\"", "needs administrator rights"),
    ("ValueType: string; ValueName: \"FriendlyAppName\"", "ValueType: strng; ValueName: \"FriendlyAppName\"",
     "unknown ValueType"),
    ("Type: dirifempty", "Type: dirifemtpy", "Type must be one of"),
    ("CustomMessage('RemoveUserData')", "CustomMessage('RemoveUserDat')", "unknown custom message 'RemoveUserDat'"),
    ("    end;\n  end;\nend;", "  end;\nend;", "without 'end'"),
    ("Result := False;\n  if not", "Result := False;\n  end;\n  if not", "without its 'begin'"),
    ("Log('Could not remove all of ' +", "Log('Could not remove all of +", "unterminated string"),
    ("(CurUninstallStep: TUninstallStep)", "(Step: Integer)", "should be CurUninstallStepChanged"),
    ('Source: "{#SourceDir}\\{#CliExe}"; DestDir: "{app}"; Flags: ignoreversion\n',
     'Source: "{#SourceDir}\\miodesk-console.exe"; DestDir: "{app}"; Flags: ignoreversion\n', "makes no"),
    ("compiler:Languages\\Japanese.isl", "compiler:Languages\\Japanse.isl", "not a file Inno Setup 6 ships"),
    ("japanese.AssocDefaultTxt=", "; japanese.AssocDefaultTxt=", "not translated for ['japanese']"),
    ("Compression=lzma2/max\n", "Compression=lzma2/max\nSolidCompression=no\n", "given twice"),
    ("ChangesAssociations=yes", "ChangesAssociations=ja", "must be yes or no"),
]


@pytest.mark.parametrize(("good", "bad", "expected"), BROKEN_COPIES, ids=[case[2] for case in BROKEN_COPIES])
def test_the_checker_catches_a_broken_copy(good: str, bad: str, expected: str) -> None:
    text = ISS.read_bytes().decode("utf-8-sig")
    assert good in text, f"the script no longer contains {good!r}: update this case"
    broken = ("\ufeff" + text.replace(good, bad, 1)).encode("utf-8")
    errors = check_iss(ISS, broken)
    assert any(expected in error for error in errors), errors


def test_the_checker_wants_a_bom_for_japanese_text() -> None:
    text = ISS.read_bytes().decode("utf-8-sig")
    assert any(ord(char) > 127 for char in text)
    errors = check_iss(ISS, text.encode("utf-8"))
    assert any("without a UTF-8 BOM" in error for error in errors), errors


def test_params_parser() -> None:
    assert parse_params('Name: "a ""b"" c"; Flags: x y; Tasks: t') == {"Name": 'a "b" c', "Flags": "x y", "Tasks": "t"}
    for broken in ('Name: "open', "Name a", 'Name: "x" y', "Name: a; Name: b"):
        with pytest.raises(ValueError):
            parse_params(broken)
    assert constants_in("{{literal} {app}\\{cm:Launch,{#AppName}} x") == ["app", "cm:Launch,{#AppName}"]


# --- Linux .desktop, shell scripts ---------------------------------------------------------------------------
def test_desktop_entry_validates(tmp_path: Path) -> None:
    if shutil.which("desktop-file-validate") is None:
        pytest.fail("desktop-file-validate is missing; tests/run.sh installs desktop-file-utils")
    template = (INSTALLER / "linux" / "miodesk.desktop").read_text(encoding="utf-8")
    entry = tmp_path / "miodesk.desktop"
    entry.write_text(template.replace("@EXEC@", "/home/someone/.local/opt/MioDesk/miodesk"), encoding="utf-8")
    result = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr
    mime_types = re.search(r"^MimeType=(.*)$", template, re.M).group(1).strip(";").split(";")
    # "Open with" for every kind of document MioDesk reads, as `miodesk --install-desktop-entry` offers
    assert mime_types == list(desktop_entry.MIME_TYPES)
    assert "StartupWMClass=MioDesk" in template  # Qt's WM_CLASS (application name), checked by test_frozen


SHELL_SCRIPTS = [INSTALLER / "build.sh", INSTALLER / "linux" / "install.sh"]


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: p.name)
def test_shell_scripts(script: Path) -> None:
    text = script.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash\n") and "\nset -euo pipefail\n" in text
    assert script.stat().st_mode & 0o111, f"{script} is not executable"
    syntax = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, timeout=30)
    assert syntax.returncode == 0, syntax.stderr
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (tests/run.sh installs it)")
    lint = subprocess.run(["shellcheck", "--severity=style", str(script)], capture_output=True, text=True,
                          timeout=60)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_powershell_build_script_basics() -> None:
    """No PowerShell here: at least the structure a typo would break (pwsh checks the rest on Windows)."""
    text = (INSTALLER / "build.ps1").read_text(encoding="utf-8")
    assert text.count("{") == text.count("}") and text.count("(") == text.count(")")
    assert text.count("<#") == text.count("#>") == 1
    assert '$ErrorActionPreference = "Stop"' in text and "Set-StrictMode -Version Latest" in text
    assert "installer\\miodesk.spec" in text and "installer\\windows\\miodesk.iss" in text


# --- icons and versions ---------------------------------------------------------------------------------------
def test_icons_are_rendered_for_every_platform(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(INSTALLER / "icons.py"), str(tmp_path)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    ico = (tmp_path / "miodesk.ico").read_bytes()
    reserved, kind, count = struct.unpack_from("<HHH", ico)
    assert (reserved, kind) == (0, 1) and count >= 6
    sizes = set()
    for index in range(count):
        width, _h, _c, _r, _planes, _bits, length, offset = struct.unpack_from("<BBBBHHII", ico, 6 + 16 * index)
        assert ico[offset:offset + 8] == b"\x89PNG\r\n\x1a\n" and offset + length <= len(ico)
        sizes.add(width or 256)
    assert {16, 32, 48, 256} <= sizes
    icns = (tmp_path / "miodesk.icns").read_bytes()
    assert icns[:4] == b"icns" and struct.unpack(">I", icns[4:8])[0] == len(icns)
    pos, kinds = 8, []
    while pos < len(icns):
        kinds.append(icns[pos:pos + 4])
        length = struct.unpack(">I", icns[pos + 4:pos + 8])[0]
        assert icns[pos + 8:pos + 16] == b"\x89PNG\r\n\x1a\n"
        pos += length
    assert pos == len(icns) and {b"ic07", b"ic08", b"ic09", b"ic10"} <= set(kinds)
    for size in (16, 48, 256, 512):
        png = (tmp_path / "hicolor" / f"{size}x{size}" / "apps" / "miodesk.png").read_bytes()
        assert struct.unpack(">II", png[16:24]) == (size, size)
    assert (tmp_path / "hicolor" / "scalable" / "apps" / "miodesk.svg").is_file()


def test_versions_come_from_the_package_metadata() -> None:
    from importlib.metadata import version

    printed = subprocess.run([sys.executable, str(INSTALLER / "package_info.py")], capture_output=True, text=True,
                             timeout=60)
    assert printed.stdout.strip() == version("miodesk")
    assert package_info.numeric_version("0.1.0") == (0, 1, 0, 0)
    assert package_info.numeric_version("1.2.3.4.5") == (1, 2, 3, 4)
    assert package_info.numeric_version("2.0rc1+local") == (2, 0, 0, 0)
    with pytest.raises(ValueError):
        package_info.numeric_version("70000.0")
    # the Windows version resource is a PyInstaller version file: one Python expression
    text = package_info.windows_version_file("0.1.0", "MioDesk.exe", "MioDesk")
    tree = ast.parse(text, mode="eval")
    assert isinstance(tree.body, ast.Call) and tree.body.func.id == "VSVersionInfo"
    assert "filevers=(0, 1, 0, 0)" in text and "StringStruct('ProductVersion', '0.1.0')" in text


def test_macos_info_plist() -> None:
    info = package_info.macos_info_plist("0.1.0")
    plistlib.loads(plistlib.dumps(info))  # serialisable as a plist
    assert info["CFBundleShortVersionString"] == "0.1.0" and info["CFBundleIdentifier"] == package_info.BUNDLE_ID
    assert "microphone" in info["NSMicrophoneUsageDescription"].lower() or "voice" in info["NSMicrophoneUsageDescription"]
    types = {uti for doc in info["CFBundleDocumentTypes"] for uti in doc["LSItemContentTypes"]}
    assert types == {"public.plain-text", "org.idpf.epub-container"}
    assert all(doc["LSHandlerRank"] == "Alternate" for doc in info["CFBundleDocumentTypes"])  # not the default
    entitlements = plistlib.loads((INSTALLER / "macos" / "entitlements.plist").read_bytes())
    assert entitlements["com.apple.security.device.audio-input"] is True


def test_frozen_folder_filters() -> None:
    keep = package_info.keep_collected
    assert keep("PySide6/Qt/translations/qtbase_ja.qm") and not keep("PySide6/Qt/translations/qtbase_de.qm")
    assert not keep("libasound.so.2") and not keep("PySide6/opengl32sw.dll") and keep("libportaudio.so.2")
    assert not keep("PySide6/Qt/qml/QtQuick/qmldir") and keep("PySide6/Qt/lib/libQt6Widgets.so.6")
    assert package_info.keep_qt_plugin("platforms", "libqxcb.so")
    assert package_info.keep_qt_plugin("platforms", "qwindows.dll")
    assert package_info.keep_qt_plugin("platforms", "libqcocoa.dylib")
    assert not package_info.keep_qt_plugin("platforms", "libqeglfs.so")
    assert not package_info.keep_qt_plugin("platformthemes", "libqgtk3.so")
    assert not package_info.keep_qt_plugin("sqldrivers", "libqsqlite.so")
    assert not package_info.keep_qt_plugin("imageformats", "libqtiff.so")


def test_spec_and_hooks_are_valid_python() -> None:
    for path in [INSTALLER / "miodesk.spec", *sorted((INSTALLER / "hooks").glob("*.py")), INSTALLER / "launcher.py"]:
        compile(path.read_text(encoding="utf-8"), str(path), "exec")
