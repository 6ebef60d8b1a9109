from robo.cli.main import main

main()
