from components.validate.cli import main

main()
