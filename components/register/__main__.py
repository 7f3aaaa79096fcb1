from components.register.cli import main

main()
