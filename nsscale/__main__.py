from nsscale.cli import main

main()
