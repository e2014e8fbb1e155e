from creditwindow.entry import main

main()
