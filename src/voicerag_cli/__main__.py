from voicerag_cli.cli.app import main

main()
