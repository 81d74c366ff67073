from devices.emulators.sscard.cli import main

main()
