from defection.cli.app import main

main()
