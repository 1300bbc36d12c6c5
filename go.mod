module github.com/deaddrop/deaddrop

go 1.26
