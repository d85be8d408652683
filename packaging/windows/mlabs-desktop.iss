; Inno Setup script: a Windows installer for the PyInstaller bundle.
;
; 1. On Windows, build the bundle:   python packaging\build.py
;    (it creates dist\mlabs-desktop\ and runs the bundle's self-test)
; 2. Compile this script (Inno Setup 6):
;      iscc packaging\windows\mlabs-desktop.iss
;    -> dist\installer\MachineLabs-Desktop-<version>-setup.exe
;    With build.py --out DIR, pass the bundle's folder:  iscc /DDistDir=DIR\dist packaging\windows\mlabs-desktop.iss
;
; AppName and AppVersion must match pyproject.toml (tests/test_packaging.py checks);
; a release can override the version with /DAppVersion=X.Y.Z.
; Paths below are relative to this script's folder.

#define AppName "MachineLabs Desktop"
#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#define AppPublisher "MachineLabs"
#define AppExeName "mlabs-desktop.exe"
#define BundleName "mlabs-desktop"
#ifndef DistDir
  #define DistDir "..\..\dist"
#endif

[Setup]
; The AppId identifies the installation for upgrades and uninstalling: never change it.
AppId={{6F0C2B7E-4E57-4B8A-9C1E-3D5A8F2E7B41}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher={#AppPublisher}
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
; Per-user install by default (no administrator needed); the user may choose all users.
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir={#DistDir}\installer
OutputBaseFilename=MachineLabs-Desktop-{#AppVersion}-setup
SetupIconFile=..\..\resources\icons\mlabs-desktop.ico
UninstallDisplayIcon={app}\{#AppExeName}
UninstallDisplayName={#AppName}
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "{#DistDir}\{#BundleName}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\{#AppExeName}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExeName}"; Tasks: desktopicon

[Run]
Filename: "{app}\{#AppExeName}"; Description: "{cm:LaunchProgram,{#StringChange(AppName, '&', '&&')}}"; Flags: nowait postinstall skipifsilent

[UninstallDelete]
; Only what the installer put in {app}; the user's library, settings and logs (AppData) stay.
Type: filesandordirs; Name: "{app}\_internal"
