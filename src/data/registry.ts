/**
 * The data sets `fhenet data` knows: where each comes from, and the SHA-256 of every file of every accepted form.
 *
 * A data set can be accepted in more than one form (CIFAR-10: the official binary release, or the JPEG class-folder
 * copy; Fashion-MNIST: the official gzipped IDX files, or Debian's `dataset-fashion-mnist`, whose gzip headers differ
 * from upstream's). Each form has its own checksums; a form is complete when all its files are stored and verified.
 * Checksums: the official files' SHA-256 as published alongside them by their users (TensorFlow Datasets, torchvision
 * mirrors); the JPEG copy's and the Debian files' measured here (sha256sum).
 */

export interface DataFile {
  /** File name in the data set's folder. */
  name: string;
  sha256: string;
  size: number;
  /** Official download location; a form without URLs is accepted only with `--from FILE`. */
  url?: string;
}

export interface DataForm {
  id: string;
  description: string;
  files: DataFile[];
}

export interface DatasetSpec {
  name: string;
  description: string;
  homepage: string;
  /** Accepted forms; the first with URLs is what a plain `fhenet data fetch NAME` downloads. */
  forms: DataForm[];
}

const FASHION_BASE = 'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com';

export const CIFAR10: DatasetSpec = {
  name: 'cifar10',
  description: 'CIFAR-10: 60,000 32×32 RGB images in 10 classes (50,000 train, 10,000 test)',
  homepage: 'https://www.cs.toronto.edu/~kriz/cifar.html',
  forms: [
    {
      id: 'binary',
      description: 'official binary release (cifar-10-binary.tar.gz, 170 MB)',
      files: [
        {
          name: 'cifar-10-binary.tar.gz',
          sha256: 'c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd',
          size: 170_052_171,
          url: 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz',
        },
      ],
    },
    {
      id: 'jpeg',
      description: 'JPEG class-folder copy (cifar10-jpg.tar.gz, 19.6 MB; lossy re-encoding of the official images)',
      files: [{ name: 'cifar10-jpg.tar.gz', sha256: '377097f6f22d5ccedaab660b9e1a2057716bd12791f1a43bcd03be6dd7efd436', size: 19_568_343 }],
    },
  ],
};

export const FASHION_MNIST: DatasetSpec = {
  name: 'fashion-mnist',
  description: 'Fashion-MNIST: 70,000 28×28 grayscale images of clothing in 10 classes (60,000 train, 10,000 test)',
  homepage: 'https://github.com/zalandoresearch/fashion-mnist',
  forms: [
    {
      id: 'official',
      description: 'official gzipped IDX files (30 MB)',
      files: [
        { name: 'train-images-idx3-ubyte.gz', sha256: '3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84', size: 26_421_880 },
        { name: 'train-labels-idx1-ubyte.gz', sha256: 'a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845', size: 29_515 },
        { name: 't10k-images-idx3-ubyte.gz', sha256: '346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073', size: 4_422_102 },
        { name: 't10k-labels-idx1-ubyte.gz', sha256: '67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5', size: 5_148 },
      ].map((f) => ({ ...f, url: `${FASHION_BASE}/${f.name}` })),
    },
    {
      id: 'debian',
      description: "Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist; same images, gzip headers without file names)",
      files: [
        { name: 'train-images-idx3-ubyte.gz', sha256: 'b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7', size: 26_421_856 },
        { name: 'train-labels-idx1-ubyte.gz', sha256: '0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056', size: 29_491 },
        { name: 't10k-images-idx3-ubyte.gz', sha256: 'cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa', size: 4_422_079 },
        { name: 't10k-labels-idx1-ubyte.gz', sha256: '8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05', size: 5_125 },
      ],
    },
  ],
};

export const DATASETS: readonly DatasetSpec[] = [CIFAR10, FASHION_MNIST];
