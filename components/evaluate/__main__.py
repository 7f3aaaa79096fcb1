from components.evaluate.cli import main

main()
