from countersign.cli import main

main()
