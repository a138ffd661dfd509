from emnist_bench.runs.command import main

if __name__ == "__main__":
    main()
