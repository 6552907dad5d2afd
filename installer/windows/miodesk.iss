; MioDesk for Windows: Inno Setup 6 script. A per-user install that needs no administrator rights.
;
; Built by installer\build.ps1, which freezes dist\MioDesk with PyInstaller and then runs
;   ISCC /DAppVersion=0.1.0 /DNumericVersion=0.1.0.0 /DVariant=standard installer\windows\miodesk.iss
; AppVersion comes from the package metadata (one place: pyproject.toml -> importlib.metadata).
; Variant "standard" is the CPU + DirectML build, "cuda" the NVIDIA build (installer\README.md says
; why there are two installers). Both share the AppId: installing one replaces the other.
; Optional code signing: ISCC /Smiodesksign="signtool sign /fd sha256 /tr <timestamp url> /td sha256
;   /sha1 <certificate thumbprint> $f" /DSignTool=miodesksign ...

#ifndef AppVersion
  #error AppVersion is not defined: build with installer\build.ps1 (ISCC /DAppVersion=...)
#endif
#ifndef NumericVersion
  #define NumericVersion "0.0.0.0"
#endif
#ifndef Variant
  #define Variant "standard"
#endif
#ifndef SourceDir
  #define SourceDir "..\..\dist\MioDesk"
#endif
#ifndef IconFile
  #define IconFile "..\..\build\miodesk\icons\miodesk.ico"
#endif
#ifndef OutputDir
  #define OutputDir "..\..\dist"
#endif

#define AppName "MioDesk"
#define AppExe "MioDesk.exe"
#define CliExe "miodesk-cli.exe"
; Never change the AppId: Windows knows installed MioDesk versions by it (upgrades, uninstall).
#define AppId "{{B0224F7F-3273-4CFB-9515-DE23F4451A4A}"

[Setup]
AppId={#AppId}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher=MioDesk contributors
AppCopyright=MioDesk contributors, MIT licence
VersionInfoVersion={#NumericVersion}
VersionInfoProductVersion={#NumericVersion}
VersionInfoDescription={#AppName} {#AppVersion} setup ({#Variant})
; Per user, no UAC prompt: %LOCALAPPDATA%\Programs\MioDesk. An administrator may still choose an
; all-users install from the command line (/ALLUSERS); HKA below follows that choice.
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=commandline
DefaultDirName={autopf}\{#AppName}
DisableProgramGroupPage=yes
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
OutputDir={#OutputDir}
OutputBaseFilename=MioDesk-{#AppVersion}-windows-x64-{#Variant}-setup
SetupIconFile={#IconFile}
UninstallDisplayIcon={app}\{#AppExe}
UninstallDisplayName={#AppName} {#AppVersion}
WizardStyle=modern
Compression=lzma2/max
SolidCompression=yes
ChangesAssociations=yes
CloseApplications=yes
RestartApplications=no
ShowLanguageDialog=auto
#ifdef SignTool
SignTool={#SignTool}
SignedUninstaller=yes
#endif

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"
Name: "japanese"; MessagesFile: "compiler:Languages\Japanese.isl"

[CustomMessages]
english.AssocGroup=Documents:
english.AssocOpenWith=Add "Open with MioDesk" for text files (.txt) and EPUB books (.epub)
english.AssocDefaultEpub=Make MioDesk the default program for EPUB books (.epub)
english.AssocDefaultTxt=Make MioDesk the default program for text files (.txt)
english.TextFileType=Text document
english.EpubFileType=EPUB book
english.RemoveUserData=Also remove your MioDesk data: your voices, downloaded speech models, settings and logs in%n%n%1%n%nChoose No to keep them for a later installation.
japanese.AssocGroup=文書:
japanese.AssocOpenWith=テキストファイル (.txt) と EPUB 電子書籍 (.epub) の「プログラムから開く」に MioDesk を追加する
japanese.AssocDefaultEpub=EPUB 電子書籍 (.epub) を既定で MioDesk で開く
japanese.AssocDefaultTxt=テキストファイル (.txt) を既定で MioDesk で開く
japanese.TextFileType=テキスト文書
japanese.EpubFileType=EPUB 電子書籍
japanese.RemoveUserData=MioDesk のデータ（自分の声、ダウンロードした音声モデル、設定、ログ）も削除しますか？%n%n%1%n%n再インストールのために残す場合は「いいえ」を選んでください。

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked
Name: "openwith"; Description: "{cm:AssocOpenWith}"; GroupDescription: "{cm:AssocGroup}"
Name: "defaultepub"; Description: "{cm:AssocDefaultEpub}"; GroupDescription: "{cm:AssocGroup}"; Flags: unchecked
Name: "defaulttxt"; Description: "{cm:AssocDefaultTxt}"; GroupDescription: "{cm:AssocGroup}"; Flags: unchecked

[InstallDelete]
; An update must not keep libraries of the previous version next to the new ones.
Type: filesandordirs; Name: "{app}\_internal"

[Files]
#ifdef SignTool
Source: "{#SourceDir}\{#AppExe}"; DestDir: "{app}"; Flags: ignoreversion signonce
Source: "{#SourceDir}\{#CliExe}"; DestDir: "{app}"; Flags: ignoreversion signonce
#else
Source: "{#SourceDir}\{#AppExe}"; DestDir: "{app}"; Flags: ignoreversion
Source: "{#SourceDir}\{#CliExe}"; DestDir: "{app}"; Flags: ignoreversion
#endif
Source: "{#SourceDir}\_internal\*"; DestDir: "{app}\_internal"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\{#AppExe}"; WorkingDir: "{userdocs}"; Comment: "Read documents aloud offline"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; WorkingDir: "{userdocs}"; Tasks: desktopicon

[Registry]
; ProgIDs: what Explorer runs for a document MioDesk opens. Registered always (invisible on their own).
Root: HKA; Subkey: "Software\Classes\MioDesk.Text"; ValueType: string; ValueName: ""; ValueData: "{cm:TextFileType}"; Flags: uninsdeletekey
Root: HKA; Subkey: "Software\Classes\MioDesk.Text\DefaultIcon"; ValueType: string; ValueName: ""; ValueData: "{app}\{#AppExe},0"
Root: HKA; Subkey: "Software\Classes\MioDesk.Text\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\{#AppExe}"" ""%1"""
Root: HKA; Subkey: "Software\Classes\MioDesk.Epub"; ValueType: string; ValueName: ""; ValueData: "{cm:EpubFileType}"; Flags: uninsdeletekey
Root: HKA; Subkey: "Software\Classes\MioDesk.Epub\DefaultIcon"; ValueType: string; ValueName: ""; ValueData: "{app}\{#AppExe},0"
Root: HKA; Subkey: "Software\Classes\MioDesk.Epub\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\{#AppExe}"" ""%1"""
; The application's own entry: its name in "Open with" lists and the types it reads.
Root: HKA; Subkey: "Software\Classes\Applications\{#AppExe}"; ValueType: string; ValueName: "FriendlyAppName"; ValueData: "{#AppName}"; Flags: uninsdeletekey
Root: HKA; Subkey: "Software\Classes\Applications\{#AppExe}\SupportedTypes"; ValueType: string; ValueName: ".txt"; ValueData: ""
Root: HKA; Subkey: "Software\Classes\Applications\{#AppExe}\SupportedTypes"; ValueType: string; ValueName: ".epub"; ValueData: ""
Root: HKA; Subkey: "Software\Classes\Applications\{#AppExe}\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\{#AppExe}"" ""%1"""
; "Open with MioDesk" without taking the default away from the program the user has chosen.
Root: HKA; Subkey: "Software\Classes\.txt\OpenWithProgids"; ValueType: string; ValueName: "MioDesk.Text"; ValueData: ""; Flags: uninsdeletevalue; Tasks: openwith
Root: HKA; Subkey: "Software\Classes\.epub\OpenWithProgids"; ValueType: string; ValueName: "MioDesk.Epub"; ValueData: ""; Flags: uninsdeletevalue; Tasks: openwith
; The default, only when asked for. (Windows 10/11 keep a choice the user made in Explorer; then
; Windows asks once which program to use, and MioDesk is offered.)
Root: HKA; Subkey: "Software\Classes\.epub"; ValueType: string; ValueName: ""; ValueData: "MioDesk.Epub"; Flags: uninsdeletevalue; Tasks: defaultepub
Root: HKA; Subkey: "Software\Classes\.txt"; ValueType: string; ValueName: ""; ValueData: "MioDesk.Text"; Flags: uninsdeletevalue; Tasks: defaulttxt
; Win+R "MioDesk" and "miodesk-cli" start it without the folder on PATH.
Root: HKA; Subkey: "Software\Microsoft\Windows\CurrentVersion\App Paths\{#AppExe}"; ValueType: string; ValueName: ""; ValueData: "{app}\{#AppExe}"; Flags: uninsdeletekey
Root: HKA; Subkey: "Software\Microsoft\Windows\CurrentVersion\App Paths\{#CliExe}"; ValueType: string; ValueName: ""; ValueData: "{app}\{#CliExe}"; Flags: uninsdeletekey

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent

[UninstallDelete]
Type: dirifempty; Name: "{app}"

[Code]
{ MioDesk keeps voices, downloaded models, settings, logs and its decoder cache under
  %LOCALAPPDATA%\MioDesk (platformdirs, see miodesk/paths.py). The uninstaller asks whether to remove
  them; a silent uninstall keeps them unless started with /REMOVEUSERDATA=1. }

function UserDataDir(): String;
begin
  Result := ExpandConstant('{localappdata}\MioDesk');
end;

function ShouldRemoveUserData(): Boolean;
begin
  Result := False;
  if not DirExists(UserDataDir()) then
    exit;
  if ExpandConstant('{param:REMOVEUSERDATA|0}') = '1' then
  begin
    Result := True;
    exit;
  end;
  if not UninstallSilent() then
    Result := MsgBox(FmtMessage(CustomMessage('RemoveUserData'), [UserDataDir()]),
                     mbConfirmation, MB_YESNO or MB_DEFBUTTON2) = IDYES;
end;

procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
begin
  if CurUninstallStep = usPostUninstall then
  begin
    if ShouldRemoveUserData() then
    begin
      if not DelTree(UserDataDir(), True, True, True) then
        Log('Could not remove all of ' + UserDataDir());
    end;
  end;
end;
