from components.blend.cli import main

main()
