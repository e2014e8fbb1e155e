from creditwindow.cli import main

main()
