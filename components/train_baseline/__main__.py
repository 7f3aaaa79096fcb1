from components.train_baseline.cli import main

main()
