from components.pipeline.cli import main

main()
