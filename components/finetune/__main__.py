from components.finetune.cli import main

main()
