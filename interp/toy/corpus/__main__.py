"""`python -m interp.toy.corpus`: write the built-in model's prompt sets or print sample documents."""

from interp.toy.corpus import main

main()
