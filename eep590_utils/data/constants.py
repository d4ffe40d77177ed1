"""The datasets' fixed facts: class names, normalisation constants, file names, seeds.

Shared by every module of ``eep590_utils.data``; none of them imports anything heavier than this.
"""
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
MNIST_MEAN = (0.1307,)
MNIST_STD = (0.3081,)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
CIFAR_ARCHIVE = "cifar10-jpg.tar.gz"
CIFAR_PICKLE_DIR = "cifar-10-batches-py"
CIFAR_PICKLES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")
MNIST_STEMS = ("train-images", "train-labels", "t10k-images", "t10k-labels")
MNIST_OFFLINE_TEST_EVERY = 5  # offline (test set only): a fifth of each digit is kept for testing, 2000 of 10,000
SPLIT_SEED = 0  # fixed order of image-folder copies and of the offline MNIST split: the same everywhere
