from g4f_server.cli import main

main()
