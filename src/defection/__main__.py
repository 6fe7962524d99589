from defection.cli import main

main()
