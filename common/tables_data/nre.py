"""Tables 1-4 of Sabokrou, Khalooei, Adeli, "Self-Supervised Representation Learning via Neighborhood-Relational
Encoding" (ICCV 2019), transcribed from shared/papers/nre.md. Values as printed (Tables 1 and 3 print fractions,
Tables 2 and 4 percentages); "–" is None."""
from common.registry import BASELINE, CITED, OURS, Column, Row, Table

TABLES = [
    Table(
        id="nre.table1", paper="nre", label="Table 1",
        caption=("Comparison results of the accuracy for our method (NRE) with conventional and widely-used "
                 "auto-encoders. The best results are typeset in bold. NRE is subscripted with the chosen "
                 "hyperparameters (*i.e.*,  $\\text{NRE}_{\\lambda_1, \\lambda_2, \\lambda_3}$ )."),
        unit="MNIST test accuracy (fraction) of an SVM on the latent code", decimals=4, paper_decimals=3,
        row_header="Classifier / # of Epochs", datasets=("mnist",),
        columns=(Column("L-SVM 40"), Column("L-SVM 100"), Column("R-SVM 40"), Column("R-SVM 100")),
        rows=(
            Row("AE [20]", (0.969, 0.969, 0.961, 0.972), BASELINE),
            Row("DAE [57]", (0.942, 0.936, 0.954, 0.964), BASELINE),
            Row("Context AE [42]", (0.970, 0.974, 0.978, 0.981), BASELINE),
            Row("Split-Brain AE [64]", (0.972, 0.973, 0.975, 0.979), BASELINE),
            Row("NRE_0.5,0.2,0.3 (Ours)", (0.977, 0.978, 0.981, 0.984), OURS),
        ),
        notes=(
            "Baseline rows: Sec. 4.2 says the auto-encoders 'are trained with respect to different policies' "
            "and 'all AEs are trained for 40 and 100 epochs' for fair comparison, i.e. by the authors.",
            "R-SVM: RBF kernel with hyperparameter 0.01 (Sec. 4.2).",
        ),
    ),
    Table(
        id="nre.table2", paper="nre", label="Table 2",
        caption=("Performance of our self-supervised representation based on NRE for classification, "
                 "detection, and segmentation tasks. Classification and Fast R-CNN [17] detection results for "
                 "the PASCAL VOC 2007 [14] test set, and FCN [32] segmentation results on the PASCAL VOC 2012 "
                 "validation set, under the standard mean average precision (mAP) or mean intersection over "
                 "union (mIOU) metrics for each task. Classification, Det and Seg columns show classification, "
                 "detection, and segmentation results, respectively."),
        unit="mAP (%)", decimals=1, paper_decimals=1, row_header="Layers",
        columns=(
            Column("Classification FC8", datasets=("imagenet", "voc2007")),
            Column("Classification FC6-8", datasets=("imagenet", "voc2007")),
            Column("Classification all", datasets=("imagenet", "voc2007")),
            Column("Det all", datasets=("imagenet", "voc2007")),
            Column("Seg all", datasets=("imagenet", "voc2012"), unit="mIOU (%)"),
        ),
        rows=(
            Row("AlexNet [26]", (77.0, 78.8, 78.3, 56.8, 48.0), CITED),
            Row("Agrawal et al. [2]", (31.2, 31.0, 54.2, 43.9, None), CITED),
            Row("Pathak et al. [42]", (30.5, 34.6, 56.5, 44.5, 30.0), CITED),
            Row("Wang et al. [59]", (28.4, 55.6, 63.1, 47.4, None), CITED),
            Row("Doersch et al. [12]", (44.7, 55.1, 65.3, 51.1, None), CITED),
            Row("K-means [25]", (32.0, 39.2, 56.6, 45.6, 32.6), CITED),
            Row("AE [20]", (24.8, 16.0, 53.8, 41.9, None), CITED),
            Row("BiGAN [13]", (41.7, 52.5, 60.3, 46.9, 35.2), CITED),
            Row("Counting [38]", (None, None, 67.7, 51.4, 36.6), CITED),
            Row("Owens et al. [39]", (None, None, 61.3, 44.0, None), CITED),
            Row("Pathak et al. [42] (2nd row)", (None, None, 61.0, 52.2, None), CITED),
            Row("Jenni et al. [22]", (None, None, 69.8, 52.5, 38.1), CITED),
            Row("DeepCluster [7]", (None, None, 73.7, 55.4, 45.1), CITED),
            Row("Noorozi & Favaro [37]", (None, None, 67.6, 53.2, 37.6), CITED),
            Row("NRE_0.5,0.25,0.25 (Ours)", (55.9, 71.2, 74.4, 54.7, 51.1), OURS),
        ),
        notes=(
            "The paper prints 'Pathak et al. [42]' twice (rows 3 and 11); the second is named '(2nd row)' here.",
            "Cited rows: the paper says 'We follow [64]' and compares to published numbers; the other rows "
            "match the published tables of those works (e.g. Jenni et al. [22] = artifacts Table 3 'Ours').",
            "NRE is pre-trained on ImageNet with K = 400 clusters, then transferred to PASCAL VOC (Sec. 4.3).",
        ),
    ),
    Table(
        id="nre.table3", paper="nre", label="Table 3",
        caption=("Performance evaluation of NRE for refinement of adversarial examples as a defense strategy "
                 "against adversarial attacks made by the black-box FGSM [40] attack. Best results in each "
                 "column are typeset in bold."),
        unit="MNIST classification accuracy (fraction) after refinement", decimals=4, paper_decimals=0,
        row_header="epsilon",
        datasets=("mnist",),
        columns=(Column("eps=0.01"), Column("eps=0.1"), Column("eps=0.2"), Column("eps=0.3")),
        rows=(
            Row("MagNet [35]", (0.9238, 0.7655, 0.614, 0.4242), BASELINE),
            Row("NRE_0.6,0.2,0.2 (Ours)", (0.9802, 0.9056, 0.8489, 0.7166), OURS),
        ),
        notes=(
            "MagNet is a baseline run by the authors: 'The architectures used for the auto-encoders of both "
            "methods are the same ... Our method and MagNet are applied on adversarial examples' (Sec. 4.4).",
            "Protocol: 50,000 training, 150 samples for the substitute, 9,850 test samples (Sec. 4.4).",
        ),
    ),
    Table(
        id="nre.table4", paper="nre", label="Table 4",
        caption="Frame-level anomaly detection comparisons on UCSD Ped2 in terms of Equal Error Rates (EER).",
        unit="frame-level EER (%)", decimals=1, paper_decimals=0, row_header="Method", datasets=("ucsd_ped2",),
        columns=(Column("EER"),),
        rows=(
            # left Method/EER pair of the printed table, top to bottom
            Row("IBC [5]", (13.0,), CITED),
            Row("MPCCA [24]", (30.0,), CITED),
            Row("MDT [33]", (24.0,), CITED),
            Row("Bertini et al. [4]", (30.0,), CITED),
            Row("Deep-Anomaly [50]", (13.5,), CITED),
            Row("Li et al. [31]", (18.5,), CITED),
            Row("AVID [52]", (14.0,), CITED),
            Row("NRE_0.6,0.2,0.2", (17.5,), OURS),
            # right Method/EER pair, top to bottom
            Row("RE [46]", (15.0,), CITED),
            Row("Ravanbakhsh et al. [45]", (13.0,), CITED),
            Row("Ravanbakhsh et al. [44]", (14.0,), CITED),
            Row("Dan Xu et al. [62]", (17.0,), CITED),
            Row("Sabokrou et al. [47]", (19.0,), CITED),
            Row("Deep-cascade [49]", (9.0,), CITED),
            Row("ALOCC [51]", (13.0,), CITED),
            Row("NRE_0.6,0.4,0", (14.0,), OURS),
        ),
        notes=(
            "The paper prints two Method/EER column pairs side by side; here the left pair comes first, then "
            "the right pair, as one column.",
            "Protocol: 30x30 patches, trained on normal patches only, reconstruction error as score, a frame is "
            "anomalous if any of its patches is, T = 1 (Sec. 4.5).",
        ),
    ),
]
