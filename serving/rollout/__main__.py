from serving.rollout.cli import main

main()
