from runplane.cli import main

main()
