from monitoring.drift.cli import main

main()
