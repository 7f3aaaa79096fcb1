from components.export.cli import main

main()
